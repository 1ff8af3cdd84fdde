"""Loading the worker configuration: schema, precedence, domain values and error key paths."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.config import (
    DEFAULT_RPC_ENDPOINT,
    ENV_NAME,
    ENV_RPC_ENDPOINT,
    ENV_TOKEN,
    LogSettings,
    Upstream,
    WorkerConfig,
    WorkerFlags,
    load_worker_config,
)
from adapters.config.loader import merge_worker_config, parse_worker_document
from adapters.config.rendering import effective_document
from domain.errors import ConfigError, PolicyViolation
from domain.isolation import (
    ContainerIsolation,
    NoneIsolation,
    TartIsolation,
    TartVolume,
    VetuHost,
    VetuIsolation,
)
from domain.modifiers import ResourceModifier
from domain.policy import (
    ContainerPolicy,
    NonePolicy,
    ParallelsPolicy,
    TartPolicy,
    VetuPolicy,
    VolumeRule,
    check_isolation,
)
from domain.protocol import Warmup

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "worker"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(
    text: str | None = None,
    *,
    tmp_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    hostname: str = "build-host.local",
    **flags: Any,
) -> WorkerConfig:
    """Load a configuration from YAML text (written to a file), flags and environment."""
    file: str | None = None
    if text is not None:
        assert tmp_path is not None
        path = tmp_path / "worker.yml"
        path.write_text(text, encoding="utf-8")
        file = str(path)
    return load_worker_config(WorkerFlags(file=file, **flags), environ or {}, hostname)


def load_fixture(name: str) -> WorkerConfig:
    """Load one of the fixture files without flags or environment."""
    return load_worker_config(WorkerFlags(file=str(FIXTURES / name)), {}, "fixture-host")


def config_error(text: str, tmp_path: Path, **options: Any) -> ConfigError:
    """Return the ConfigError that loading ``text`` raises."""
    with pytest.raises(ConfigError) as caught:
        load(text, tmp_path=tmp_path, **options)
    return caught.value


# --- the original's fixtures ------------------------------------------------------------------


def test_an_unknown_top_level_key_is_refused_by_name() -> None:
    with pytest.raises(ConfigError) as caught:
        load_fixture("unknown-fields.yml")
    assert caught.value.key == "surprise-setting"
    assert caught.value.message == "unknown key"


def test_without_security_every_isolation_is_allowed() -> None:
    config = load_fixture("security-none.yml")
    assert config.name == "rack-2-mini-4"
    assert config.security_policy().allowed_isolations is None


def test_listing_none_and_container_allows_only_those() -> None:
    allowed = load_fixture("security-only-none-and-container-isolation.yml").security_policy()
    assert allowed.allowed_isolations is not None
    assert allowed.allowed_isolations.none == NonePolicy()
    assert allowed.allowed_isolations.container == ContainerPolicy()
    assert allowed.allowed_isolations.tart is None
    assert allowed.allowed_isolations.vetu is None
    assert allowed.allowed_isolations.parallels is None


def test_listing_only_tart_allows_tart_with_an_empty_policy() -> None:
    allowed = load_fixture("security-only-tart-isolation.yml").security_policy().allowed_isolations
    assert allowed is not None
    assert allowed.none is None
    assert allowed.container is None
    assert allowed.tart == TartPolicy()
    assert allowed.tart.allowed_images == ()
    assert allowed.tart.force_softnet is False


def test_specific_tart_images_are_kept_and_enforced() -> None:
    policy = load_fixture("security-only-specific-tart-images.yml").security_policy()
    assert policy.allowed_isolations is not None
    assert policy.allowed_isolations.tart is not None
    assert policy.allowed_isolations.tart.allowed_images == ("ghcr.io/cirruslabs/*",)
    check_isolation(policy, TartIsolation(image="ghcr.io/cirruslabs/macos-ventura-base:latest"))
    for image in (
        "example.com/cirruslabs/macos-ventura-base:latest",
        "example.org/ghcr.io/cirruslabs/whatnot",
    ):
        with pytest.raises(PolicyViolation):
            check_isolation(policy, TartIsolation(image=image))


def test_force_softnet_is_read() -> None:
    allowed = load_fixture("security-force-softnet.yml").security_policy().allowed_isolations
    assert allowed is not None
    assert allowed.tart == TartPolicy(force_softnet=True)


def test_the_standby_fixture_gives_the_standby_and_pre_pull_settings() -> None:
    config = load_fixture("standby.yml")
    assert config.tart_pre_pull.check_interval_seconds == 3 * 3600
    assert config.tart_pre_pull.jitter_seconds == 0
    assert config.tart_pre_pull.images == (
        "ghcr.io/cirruslabs/macos-runner:sonoma",
        "ghcr.io/cirruslabs/macos-runner:sequoia",
    )
    standby = config.standby()
    assert standby is not None
    assert dict(standby.resources) == {"tart-vms": 1.0}
    assert standby.isolation == TartIsolation(
        image="ghcr.io/cirruslabs/macos-runner:sonoma",
        user="admin",
        password="admin",
        display="1920x1080",
        softnet=True,
        cpu=4,
        memory=16384,
    )
    assert standby.warmup == Warmup(script="xcrun simctl list || true", timeout_seconds=600)


@pytest.mark.parametrize(
    ("fixture", "key"),
    [
        ("standby-unknown-key.yml", "standby.isolation.tart.nested"),
        ("upstreams-with-token.yml", "upstreams"),
        ("bad-rotate-size.yml", "log.rotate-size"),
        ("bad-log-level.yml", "log.level"),
        ("bad-resource-value.yml", "resources.gpu"),
        ("bad-volume-rule.yml", "security.allowed-isolations.tart.allowed-volumes[1].source"),
    ],
)
def test_each_broken_fixture_names_its_key(fixture: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_fixture(fixture)
    assert caught.value.key == key


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("worker*.yml")))
def test_every_example_configuration_loads(example: str) -> None:
    config = load_worker_config(WorkerFlags(file=str(EXAMPLES / example)), {}, "host")
    assert config.name
    assert effective_document(config)["name"] == config.name


# --- defaults and precedence ------------------------------------------------------------------


def test_with_nothing_given_the_defaults_apply() -> None:
    config = load(hostname="mac.lan")
    assert config.name == "mac"
    assert config.upstreams == (Upstream(DEFAULT_RPC_ENDPOINT, ""),)
    assert DEFAULT_RPC_ENDPOINT == "http://127.0.0.1:8080"
    assert config.log == LogSettings(
        level="info", file=None, rotate_size_bytes=None, max_rotations=0
    )
    assert dict(config.labels) == {}
    assert dict(config.resources) == {}
    assert config.standby() is None
    assert config.resource_modifiers() == ()
    assert config.tuning_vetu_mtu == 0


def test_the_default_name_strips_lan_then_local_from_the_host_name() -> None:
    assert load(hostname="mac.local.lan").name == "mac"
    assert load(hostname="mac.lan.local").name == "mac.lan"


def test_an_empty_host_name_without_a_configured_name_is_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load(hostname="")
    assert caught.value.key == "name"


FILE_WITH_SCALARS = """
name: from-file
token: file-token
rpc: {endpoint: "http://file.example:1"}
"""


def test_the_file_beats_the_defaults(tmp_path: Path) -> None:
    config = load(FILE_WITH_SCALARS, tmp_path=tmp_path)
    assert config.name == "from-file"
    assert config.upstreams == (Upstream("http://file.example:1", "file-token"),)


def test_the_environment_beats_the_file(tmp_path: Path) -> None:
    environ = {
        ENV_NAME: "from-env",
        ENV_TOKEN: "env-token",
        ENV_RPC_ENDPOINT: "http://env.example:2",
    }
    config = load(FILE_WITH_SCALARS, tmp_path=tmp_path, environ=environ)
    assert config.name == "from-env"
    assert config.upstreams == (Upstream("http://env.example:2", "env-token"),)


def test_flags_beat_the_environment_and_the_file(tmp_path: Path) -> None:
    environ = {ENV_NAME: "from-env", ENV_TOKEN: "env-token", ENV_RPC_ENDPOINT: "http://env:2"}
    config = load(
        FILE_WITH_SCALARS,
        tmp_path=tmp_path,
        environ=environ,
        name="from-flag",
        token="flag-token",
        rpc_endpoint="https://flag.example",
    )
    assert config.name == "from-flag"
    assert config.upstreams == (Upstream("https://flag.example", "flag-token"),)


def test_an_empty_environment_variable_counts_as_unset(tmp_path: Path) -> None:
    config = load(FILE_WITH_SCALARS, tmp_path=tmp_path, environ={ENV_NAME: "", ENV_TOKEN: ""})
    assert config.name == "from-file"
    assert config.upstreams[0].token == "file-token"


def test_labels_and_resources_are_merged_key_by_key_with_flags_winning(tmp_path: Path) -> None:
    text = "labels: {a: file, b: file}\nresources: {cpu: 8, gpu: 1}\n"
    config = load(
        text,
        tmp_path=tmp_path,
        labels=("b=flag,c=flag", "d=flag"),
        resources=("gpu=0.5", "disk=100,cpu=4"),
    )
    assert dict(config.labels) == {"a": "file", "b": "flag", "c": "flag", "d": "flag"}
    assert dict(config.resources) == {"cpu": 4.0, "gpu": 0.5, "disk": 100.0}


def test_a_later_repeated_flag_wins_over_an_earlier_one() -> None:
    config = load(labels=("k=1", "k=2"), resources=("r=1", "r=3"))
    assert dict(config.labels) == {"k": "2"}
    assert dict(config.resources) == {"r": 3.0}


@pytest.mark.parametrize("value", ["gpu=lots", "gpu=", "gpu=nan", "gpu=-1", "gpu=inf"])
def test_a_resource_flag_value_must_be_a_number(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(resources=(value,))
    assert caught.value.key == "--resources"
    assert "gpu" in caught.value.message


@pytest.mark.parametrize(("flag", "value"), [("labels", "novalue"), ("resources", "=1")])
def test_a_map_flag_item_without_key_and_equals_sign_is_refused(flag: str, value: str) -> None:
    flags: dict[str, Any] = {flag: (value,)}
    with pytest.raises(ConfigError) as caught:
        load(**flags)
    assert caught.value.key == f"--{flag}"


def test_a_malformed_endpoint_is_named_by_where_it_came_from(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(rpc_endpoint="127.0.0.1:8080")
    assert caught.value.key == "--rpc-endpoint"
    with pytest.raises(ConfigError) as caught:
        load(environ={ENV_RPC_ENDPOINT: "ftp://x"})
    assert caught.value.key == ENV_RPC_ENDPOINT
    assert config_error("rpc: {endpoint: nowhere}\n", tmp_path).key == "rpc.endpoint"


# --- upstreams --------------------------------------------------------------------------------

UPSTREAMS = """
upstreams:
  - {endpoint: "https://a.example.com", token: token-a}
  - {token: token-b}
"""


def test_upstreams_give_one_controller_each_and_default_the_endpoint(tmp_path: Path) -> None:
    config = load(UPSTREAMS, tmp_path=tmp_path)
    assert config.upstreams == (
        Upstream("https://a.example.com", "token-a"),
        Upstream(DEFAULT_RPC_ENDPOINT, "token-b"),
    )
    assert config.secrets() == ("token-a", "token-b")


@pytest.mark.parametrize(
    ("extra_text", "flags", "environ", "other"),
    [
        ("token: t\n", {}, {}, "token"),
        ("", {"token": "t"}, {}, "token"),
        ("", {}, {ENV_TOKEN: "t"}, "token"),
        ("rpc: {endpoint: 'http://x:1'}\n", {}, {}, "rpc"),
        ("", {"rpc_endpoint": "http://x:1"}, {}, "rpc"),
        ("", {}, {ENV_RPC_ENDPOINT: "http://x:1"}, "rpc"),
    ],
)
def test_upstreams_with_a_token_or_rpc_from_anywhere_is_an_error_naming_both(
    tmp_path: Path,
    extra_text: str,
    flags: dict[str, str],
    environ: dict[str, str],
    other: str,
) -> None:
    error = config_error(UPSTREAMS + extra_text, tmp_path, environ=environ, **flags)
    assert error.key == "upstreams"
    assert f'"upstreams" and "{other}" are mutually exclusive' in error.message


def test_an_empty_upstreams_list_falls_back_to_token_and_rpc(tmp_path: Path) -> None:
    config = load("upstreams: []\ntoken: t\n", tmp_path=tmp_path)
    assert config.upstreams == (Upstream(DEFAULT_RPC_ENDPOINT, "t"),)


def test_an_upstream_token_never_shows_in_its_repr() -> None:
    assert "secret-value" not in repr(Upstream("http://x", "secret-value"))


# --- log --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [("640 KB", 640_000), ("100 MB", 100_000_000), ("100 MiB", 104_857_600), (1024, 1024)],
)
def test_the_rotate_size_is_read_in_bytes(tmp_path: Path, size: object, expected: int) -> None:
    text = f"log: {{level: WARNING, file: w.log, rotate-size: {size}, max-rotations: 10}}\n"
    assert load(text, tmp_path=tmp_path).log == LogSettings(
        level="warning", file="w.log", rotate_size_bytes=expected, max_rotations=10
    )


@pytest.mark.parametrize(
    "level", ["panic", "fatal", "error", "warning", "warn", "info", "Debug", "TRACE"]
)
def test_every_logrus_level_is_accepted_case_insensitively(tmp_path: Path, level: str) -> None:
    assert load(f"log: {{level: {level}}}\n", tmp_path=tmp_path).log.level == level.lower()


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("log: {level: loud}\n", "log.level"),
        ("log: {rotate-size: banana}\n", "log.rotate-size"),
        ("log: {rotate-size: 10 XB}\n", "log.rotate-size"),
        ("log: {max-rotations: -1}\n", "log.max-rotations"),
        ("log: {max-rotations: many}\n", "log.max-rotations"),
        ("log: {file: [a]}\n", "log.file"),
        ("log: {colour: red}\n", "log.colour"),
        ("log: verbose\n", "log"),
    ],
)
def test_a_bad_log_setting_names_its_key(tmp_path: Path, text: str, key: str) -> None:
    assert config_error(text, tmp_path).key == key


# --- security ---------------------------------------------------------------------------------

FULL_SECURITY = """
security:
  allowed-isolations:
    none: {}
    parallels: {}
    container:
      allowed-images: ["docker.io/library/*"]
      allowed-volumes: [{source: "/cache/*"}]
    tart:
      allowed-images: ["ghcr.io/cirruslabs/*"]
      allowed-volumes:
        - source: "/Volumes/SSD/*"
        - {source: /var/src, force-readonly: true}
      force-softnet: true
      softnet-allow: ["10.0.0.0/16", "192.168.1.1"]
    vetu:
      allowed-images: ["ghcr.io/cirruslabs/*"]
"""


def test_every_security_setting_reaches_the_domain_policy(tmp_path: Path) -> None:
    allowed = load(FULL_SECURITY, tmp_path=tmp_path).security_policy().allowed_isolations
    assert allowed is not None
    assert allowed.none == NonePolicy()
    assert allowed.parallels == ParallelsPolicy()
    assert allowed.container == ContainerPolicy(
        allowed_images=("docker.io/library/*",), allowed_volumes=(VolumeRule("/cache/*"),)
    )
    assert allowed.tart == TartPolicy(
        allowed_images=("ghcr.io/cirruslabs/*",),
        allowed_volumes=(VolumeRule("/Volumes/SSD/*"), VolumeRule("/var/src", True)),
        force_softnet=True,
        softnet_allow=("10.0.0.0/16", "192.168.1.1"),
    )
    assert allowed.vetu == VetuPolicy(("ghcr.io/cirruslabs/*",))


def test_a_bare_tart_key_disallows_tart(tmp_path: Path) -> None:
    policy = load("security:\n  allowed-isolations:\n    tart:\n    none: {}\n", tmp_path=tmp_path)
    allowed = policy.security_policy().allowed_isolations
    assert allowed is not None
    assert allowed.tart is None
    assert allowed.none == NonePolicy()
    with pytest.raises(PolicyViolation):
        check_isolation(policy.security_policy(), TartIsolation(image="x"))


def test_empty_allowed_isolations_allow_nothing(tmp_path: Path) -> None:
    policy = load("security: {allowed-isolations: {}}\n", tmp_path=tmp_path).security_policy()
    for isolation in (NoneIsolation(), ContainerIsolation(image="x"), VetuIsolation(image="x")):
        with pytest.raises(PolicyViolation):
            check_isolation(policy, isolation)


def test_security_without_allowed_isolations_allows_everything(tmp_path: Path) -> None:
    policy = load("security: {}\n", tmp_path=tmp_path).security_policy()
    assert policy.allowed_isolations is None
    check_isolation(policy, NoneIsolation())


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (
            "security: {allowed-isolations: {tart: {allowed-volumes: [{force-readonly: true}]}}}",
            "security.allowed-isolations.tart.allowed-volumes[0].source",
        ),
        (
            "security: {allowed-isolations: {tart: {allowed-volumes: [{source: /a, rw: true}]}}}",
            "security.allowed-isolations.tart.allowed-volumes[0].rw",
        ),
        (
            "security: {allowed-isolations: {tart: {images: ['x']}}}",
            "security.allowed-isolations.tart.images",
        ),
        (
            "security: {allowed-isolations: {tart: {force-softnet: maybe}}}",
            "security.allowed-isolations.tart.force-softnet",
        ),
        (
            "security: {allowed-isolations: {tart: {softnet-allow: [not-a-network]}}}",
            "security.allowed-isolations.tart.softnet-allow[0]",
        ),
        ("security: {allowed-isolations: {docker: {}}}", "security.allowed-isolations.docker"),
        ("security: {allowed-isolations: {none: {x: 1}}}", "security.allowed-isolations.none.x"),
        ("security: {isolation: {none: {}}}", "security.isolation"),
        (
            "security: {allowed-isolations: {vetu: {allowed-images: 'ghcr.io/*'}}}",
            "security.allowed-isolations.vetu.allowed-images",
        ),
    ],
)
def test_a_bad_security_setting_names_its_key(tmp_path: Path, text: str, key: str) -> None:
    assert config_error(text + "\n", tmp_path).key == key


# --- standby ----------------------------------------------------------------------------------


def test_a_vetu_standby_with_host_networking(tmp_path: Path) -> None:
    text = """
standby:
  isolation:
    vetu:
      image: ghcr.io/cirruslabs/ubuntu:latest
      cpu: 2
      memory: 4G
      networking: {host: {}}
      disk_size: 50
      port: 2222
  warmup: {script: "true", timeout: 1h30m}
"""
    standby = load(text, tmp_path=tmp_path).standby()
    assert standby is not None
    assert standby.isolation == VetuIsolation(
        image="ghcr.io/cirruslabs/ubuntu:latest",
        user="admin",
        password="admin",
        cpu=2,
        memory=4096,
        networking=VetuHost(),
        disk_size=50,
        port=2222,
    )
    assert standby.warmup == Warmup("true", 5400)
    assert dict(standby.resources) == {}


def test_a_tart_standby_reads_volumes_and_small_memory_as_gib(tmp_path: Path) -> None:
    text = """
standby:
  isolation:
    tart:
      image: img
      memory: 12
      volumes:
        - {name: cache, source: /cache, target: /mnt/cache, readonly: true}
        - {source: /src}
"""
    standby = load(text, tmp_path=tmp_path).standby()
    assert standby is not None
    assert isinstance(standby.isolation, TartIsolation)
    assert standby.isolation.memory == 12 * 1024
    assert standby.isolation.user == standby.isolation.password == "admin"
    assert standby.isolation.volumes == (
        TartVolume(name="cache", source="/cache", target="/mnt/cache", read_only=True),
        TartVolume(source="/src"),
    )
    assert standby.warmup == Warmup()


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        (
            "standby: {isolation: {tart: {image: i, bogus: 1}}}",
            "standby.isolation.tart.bogus",
            "unknown key",
        ),
        ("standby: {isolation: {tart: {image: i}}, extra: 1}", "standby.extra", "unknown key"),
        (
            "standby: {resources: {tart-vms: 1}}",
            "standby.isolation",
            "isolation configuration is required",
        ),
        (
            "standby: {isolation: {container: {image: x}}}",
            "standby.isolation",
            "only Tart and Vetu",
        ),
        ("standby: {isolation: {}}", "standby.isolation", 'one of "tart" or "vetu"'),
        (
            "standby: {isolation: {tart: {image: i}, vetu: {image: i}}}",
            "standby.isolation",
            "mutually exclusive",
        ),
        ("standby: {isolation: {tart: {user: admin}}}", "standby.isolation.tart.image", "required"),
        (
            "standby: {isolation: {tart: {image: i, memory: 4T}}}",
            "standby.isolation.tart.memory",
            "unsupported digital information unit suffix",
        ),
        (
            "standby: {isolation: {tart: {image: i, cpu: four}}}",
            "standby.isolation.tart.cpu",
            "whole number",
        ),
        (
            "standby: {isolation: {tart: {image: i, port: 70000}}}",
            "standby.isolation.tart.port",
            "at most",
        ),
        (
            "standby: {isolation: {tart: {image: i, volumes: [{target: /x}]}}}",
            "standby.isolation.tart.volumes[0].source",
            "required",
        ),
        (
            "standby: {isolation: {vetu: {image: i, networking: {}}}}",
            "standby.isolation.vetu.networking",
            "networking",
        ),
        (
            "standby: {isolation: {vetu: {image: i, networking: {bridged: {interface: en0}}}}}",
            "standby.isolation.vetu.networking.bridged",
            "unknown key",
        ),
        (
            "standby: {isolation: {tart: {image: i}}, warmup: {timeout: 600}}",
            "standby.warmup.timeout",
            "missing unit",
        ),
        (
            "standby: {isolation: {tart: {image: i}}, warmup: {timeout: soon}}",
            "standby.warmup.timeout",
            "invalid duration",
        ),
        (
            "standby: {isolation: {tart: {image: i}}, resources: {tart-vms: many}}",
            "standby.resources.tart-vms",
            "number",
        ),
    ],
)
def test_a_bad_standby_setting_names_its_key(
    tmp_path: Path, text: str, key: str, fragment: str
) -> None:
    error = config_error(text + "\n", tmp_path)
    assert error.key == key
    assert fragment in error.message


# --- modifiers, tuning, pre-pull, types -------------------------------------------------------


def test_resource_modifiers_tuning_and_pre_pull_are_read(tmp_path: Path) -> None:
    text = """
resource-modifiers:
  - match: {gpu: 0.5}
    append: {run: ["--device", "a"]}
  - match: {gpu: 1}
  - append: {run: []}
tuning: {vetu: {mtu: 1400}}
tart-pre-pull: {images: [img], check-interval: 3h, jitter: 30m}
"""
    config = load(text, tmp_path=tmp_path)
    assert config.resource_modifiers() == (
        ResourceModifier(match={"gpu": 0.5}, run_args=("--device", "a")),
        ResourceModifier(match={"gpu": 1.0}),
        ResourceModifier(),
    )
    assert config.tuning_vetu_mtu == 1400
    assert config.tart_pre_pull.images == ("img",)
    assert config.tart_pre_pull.check_interval_seconds == 10_800
    assert config.tart_pre_pull.jitter_seconds == 1800


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("resources: {gpu: lots}", "resources.gpu"),
        ("resources: {gpu: true}", "resources.gpu"),
        ("resources: {gpu: -1}", "resources.gpu"),
        ("resources: {gpu: .nan}", "resources.gpu"),
        ("resources: [gpu]", "resources"),
        ("labels: {os: [x]}", "labels.os"),
        ("labels: {1: x}", "labels.1"),
        ("name: [a, b]", "name"),
        ("token: 12345", "token"),
        ("rpc: {endpoint: 'http://x', port: 1}", "rpc.port"),
        ("upstreams: [{endpoint: 'http://x', tokn: t}]", "upstreams[0].tokn"),
        ("resource-modifiers: [{match: {gpu: half}}]", "resource-modifiers[0].match.gpu"),
        ("resource-modifiers: [{append: {run: [1]}}]", "resource-modifiers[0].append.run[0]"),
        ("resource-modifiers: [{append: {cmd: [x]}}]", "resource-modifiers[0].append.cmd"),
        ("tuning: {vetu: {mtu: 1.5}}", "tuning.vetu.mtu"),
        ("tuning: {tart: {}}", "tuning.tart"),
        ("tart-pre-pull: {check-interval: 3}", "tart-pre-pull.check-interval"),
        ("tart-pre-pull: {jitter: 5 minutes}", "tart-pre-pull.jitter"),
        ("tart-pre-pull: {images: img}", "tart-pre-pull.images"),
        ("ephemeral: true", "ephemeral"),
    ],
)
def test_a_wrong_type_or_unknown_key_names_its_key(tmp_path: Path, text: str, key: str) -> None:
    assert config_error(text + "\n", tmp_path).key == key


def test_a_yaml_integer_is_accepted_for_a_float(tmp_path: Path) -> None:
    config = load("resources: {tart-vms: 2, gpu: 0.5}\n", tmp_path=tmp_path)
    assert dict(config.resources) == {"tart-vms": 2.0, "gpu": 0.5}


def test_an_empty_file_is_an_empty_configuration(tmp_path: Path) -> None:
    assert load("", tmp_path=tmp_path, hostname="h").name == "h"


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    error = config_error("- a\n- b\n", tmp_path)
    assert error.key.endswith("worker.yml")


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    error = config_error("name: a\nlabels: {a: b\nresources: {}\n", tmp_path)
    assert error.key.endswith("worker.yml")
    assert "line 3" in error.message


def test_a_key_given_twice_is_refused_with_its_line(tmp_path: Path) -> None:
    error = config_error("name: a\ntoken: t\nname: b\n", tmp_path)
    assert error.key.endswith("worker.yml")
    assert "duplicate key 'name'" in error.message
    assert "line 3" in error.message


def test_a_missing_file_is_a_file_flag_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_worker_config(WorkerFlags(file=str(tmp_path / "absent.yml")), {}, "h")
    assert caught.value.key == "--file"
    assert "absent.yml" in caught.value.message


def test_the_effective_document_masks_tokens_and_passwords(tmp_path: Path) -> None:
    config = load_fixture("standby.yml")
    document = effective_document(config)
    assert document["upstreams"] == [{"endpoint": DEFAULT_RPC_ENDPOINT, "token": "***"}]
    assert document["standby"]["isolation"]["tart"]["password"] == "***"
    assert document["standby"]["warmup"]["timeout"] == "600s"
    assert document["standby"]["isolation"]["tart"]["memory"] == "16384M"
    assert "0d1f8a3c" not in repr(document)


def test_the_effective_document_lists_every_isolation_when_security_is_absent() -> None:
    document = effective_document(load_fixture("security-none.yml"))
    assert list(document["security"]["allowed-isolations"]) == [
        "none",
        "container",
        "tart",
        "vetu",
        "parallels",
    ]


_KEYS = st.text(alphabet="abcdefgh-", min_size=1, max_size=4)
_VALUES = st.text(alphabet="xyz019.", min_size=0, max_size=4).filter(lambda v: "," not in v)


@given(
    st.dictionaries(_KEYS, _VALUES, max_size=5),
    st.dictionaries(_KEYS, _VALUES, max_size=5),
    st.dictionaries(_KEYS, st.integers(min_value=0, max_value=64), max_size=5),
    st.dictionaries(_KEYS, st.integers(min_value=0, max_value=64), max_size=5),
)
def test_flag_entries_override_file_entries_key_by_key(
    file_labels: dict[str, str],
    flag_labels: dict[str, str],
    file_resources: dict[str, int],
    flag_resources: dict[str, int],
) -> None:
    file_model = parse_worker_document(
        {"labels": file_labels, "resources": file_resources}, "worker.yml"
    )
    flags = WorkerFlags(
        labels=tuple(f"{k}={v}" for k, v in flag_labels.items()),
        resources=(",".join(f"{k}={v}" for k, v in flag_resources.items()),)
        if flag_resources
        else (),
    )
    config = merge_worker_config(file_model, flags, {}, "host")
    assert dict(config.labels) == {**file_labels, **flag_labels}
    assert dict(config.resources) == {**file_resources, **flag_resources}
