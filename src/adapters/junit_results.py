"""JUnit XML files read into ``domain.artifacts.TestResults``, safely and in bounded memory.

``defusedxml`` refuses entity expansion and external references (a "billion laughs" file cannot
blow up the controller); ``iterparse`` reads the file as a stream and every ``<testcase>`` is
cleared once counted, so memory stays flat however many tests the file has. A test with a
``<failure>`` or an ``<error>`` failed, one with ``<skipped>`` was skipped, any other passed.
A file that is not well-formed XML gives empty counts and a notice saying so.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from os import PathLike

import defusedxml.ElementTree as SafeElementTree  # type: ignore[import-untyped]
from defusedxml import DefusedXmlException

from domain.artifacts import MAX_FAILURES, TestFailure, TestResults, bounded_message


def _failure(case: ElementTree.Element, problem: ElementTree.Element) -> TestFailure:
    classname, name = case.get("classname", ""), case.get("name", "")
    full = f"{classname}.{name}" if classname and name else classname or name or "(unnamed)"
    message = problem.get("message") or (problem.text or "")
    return TestFailure(full, bounded_message(message.splitlines()[0] if message else ""))


def parse_junit(path: str | PathLike[str], label: str) -> TestResults:
    """Count the tests of the JUnit XML file at ``path`` (``label`` names it in a notice)."""
    passed = failed = skipped = 0
    failures: list[TestFailure] = []
    try:
        for _event, element in SafeElementTree.iterparse(str(path), events=("end",)):
            if element.tag != "testcase":
                if element.tag == "testsuite":
                    element.clear()  # its test cases are counted and cleared already
                continue
            problem = element.find("failure")
            if problem is None:
                problem = element.find("error")
            if problem is not None:
                failed += 1
                if len(failures) < MAX_FAILURES:
                    failures.append(_failure(element, problem))
            elif element.find("skipped") is not None:
                skipped += 1
            else:
                passed += 1
            element.clear()
    except (ElementTree.ParseError, DefusedXmlException) as error:
        return TestResults(notices=(f"{label}: unparseable JUnit XML ({error})",))
    return TestResults(passed, failed, skipped, tuple(failures))
