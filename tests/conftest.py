"""Hypothesis profiles shared by the whole suite.

``make test`` (and CI) runs the ``ci`` profile: the property tests draw the same examples on
every run, so a red build is reproducible and a green one is not luck. ``make fuzz`` runs the
``fuzz`` profile: fresh random examples, twenty times as many, to look for new failures.
"""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("fuzz", max_examples=2_000, print_blob=True, deadline=None)
