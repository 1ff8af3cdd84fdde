"""The human summary of ``cirrus worker validate``: controllers, isolations and their limits,
standby."""

from __future__ import annotations

from adapters.config.effective import WorkerConfig
from adapters.config.loader import WorkerFlags, merge_worker_config, parse_worker_document
from adapters.config.yaml_file import parse_yaml
from app.config_summary import summary_lines


def config_of(text: str) -> WorkerConfig:
    """The effective configuration of a worker file's text (no flags, no environment)."""
    model = parse_worker_document(parse_yaml(text, "worker.yml"), "worker.yml")
    return merge_worker_config(model, WorkerFlags(), {}, "box.local")


def test_without_a_security_section_every_isolation_shows_and_tart_shares_no_volume() -> None:
    lines = summary_lines(config_of("name: w1\n"))

    assert lines == [
        "worker w1: http://127.0.0.1:8080",
        "isolation none: tasks run on this host as the worker's user",
        "isolation container: any image; any volume",
        "isolation tart: any image; no volumes",
        "isolation vetu: any image",
        "isolation parallels: allowed",
        "standby: off",
    ]


def test_the_tart_limits_list_images_volumes_in_order_and_softnet() -> None:
    text = """
security:
  allowed-isolations:
    tart:
      allowed-images: ["ghcr.io/cirruslabs/*"]
      allowed-volumes: [{source: /a/*}, {source: /b, force-readonly: true}]
      force-softnet: true
      softnet-allow: [10.0.0.0/16]
"""
    lines = summary_lines(config_of(text))

    assert lines[1:] == [
        "isolation tart: images ghcr.io/cirruslabs/*; volumes /a/*, /b (read-only); "
        "Softnet forced; Softnet may reach 10.0.0.0/16",
        "standby: off",
    ]


def test_an_empty_allowed_isolations_says_every_task_is_refused() -> None:
    lines = summary_lines(config_of("security: {allowed-isolations: {}}\n"))

    assert "isolations: none allowed (every task is refused)" in lines


def test_labels_resources_and_several_upstreams_are_listed() -> None:
    text = """
labels: {os-version: "14", device: pixel}
resources: {gpu: 0.5, vms: 2}
upstreams:
  - {endpoint: "https://a.example.com", token: x1}
  - {endpoint: "https://b.example.com", token: x2}
"""
    lines = summary_lines(config_of(text))

    assert lines[:3] == [
        "worker box: https://a.example.com, https://b.example.com",
        "labels: device=pixel, os-version=14",
        "resources: gpu=0.5, vms=2",
    ]


def test_the_standby_shows_its_image_size_and_the_resources_it_needs() -> None:
    text = """
standby:
  resources: {tart-vms: 1}
  isolation: {tart: {image: "ghcr.io/cirruslabs/macos:latest", cpu: 4, memory: 12}}
"""
    lines = summary_lines(config_of(text))

    assert lines[-1] == (
        "standby: tart ghcr.io/cirruslabs/macos:latest, 4 CPUs, 12288 MiB, needs tart-vms=1"
    )


def test_no_token_appears_in_the_summary() -> None:
    lines = summary_lines(config_of("token: very-secret-registration-token\n"))

    assert not any("very-secret" in line for line in lines)
