"""Loading the worker configuration: flag > environment > file > default, checked and converted.

``labels`` and ``resources`` are merged key by key with the same precedence. Every problem is
raised as a ``ConfigError`` whose ``key`` is the key path (``log.rotate-size``,
``security.allowed-isolations.tart.allowed-volumes[0].source``), the flag (``--resources``), the
environment variable or the file (for YAML syntax errors).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from adapters.config.effective import (
    DEFAULT_RPC_ENDPOINT,
    LogSettings,
    TartPrePull,
    Upstream,
    WorkerConfig,
)
from adapters.config.environment import (
    ENV_NAME,
    ENV_RPC_ENDPOINT,
    ENV_TOKEN,
    read_worker_environment,
)
from adapters.config.validation_errors import config_error_from_validation
from adapters.config.worker_config import (
    AllowedIsolationsModel,
    ResourceModifierModel,
    SecurityModel,
    StandbyModel,
    VolumeRuleModel,
    WorkerFileModel,
    check_endpoint,
)
from adapters.config.yaml_file import read_yaml_file
from domain.errors import ConfigError
from domain.identity import default_worker_name
from domain.isolation import TartIsolation, TartVolume, VetuHost, VetuIsolation
from domain.modifiers import ResourceModifier
from domain.policy import (
    AllowedIsolations,
    ContainerPolicy,
    NonePolicy,
    ParallelsPolicy,
    SecurityPolicy,
    TartPolicy,
    VetuPolicy,
    VolumeRule,
)
from domain.protocol import StandbyParameters, Warmup, frozen_float_map, frozen_str_map


@dataclass(frozen=True, slots=True)
class WorkerFlags:
    """The shared worker flags as given on the command line (None or empty: not given)."""

    file: str | None = None
    name: str | None = None
    token: str | None = None
    labels: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    rpc_endpoint: str | None = None


@dataclass(frozen=True, slots=True)
class _Setting:
    """A scalar setting and where it came from, for error messages."""

    value: str
    origin: str


def load_worker_config(
    flags: WorkerFlags, environ: Mapping[str, str], hostname: str
) -> WorkerConfig:
    """Merge flags, environment and file (``flags.file``) into a checked ``WorkerConfig``."""
    document = read_yaml_file(flags.file) if flags.file else None
    file_model = parse_worker_document(document, flags.file or "")
    return merge_worker_config(file_model, flags, environ, hostname)


def parse_worker_document(document: object, source: str) -> WorkerFileModel:
    """Validate a parsed YAML document against the file schema (None, an empty file, is empty)."""
    if document is None:
        return WorkerFileModel()
    if not isinstance(document, dict):
        raise ConfigError(source, "the configuration must be a mapping of keys to values")
    try:
        return WorkerFileModel.model_validate(document)
    except ValidationError as error:
        raise config_error_from_validation(error) from None


def merge_worker_config(
    file_model: WorkerFileModel, flags: WorkerFlags, environ: Mapping[str, str], hostname: str
) -> WorkerConfig:
    """Apply the precedence flag > environment > file > default and build the domain values."""
    env = read_worker_environment(environ)
    name = _first_given((flags.name, "--name"), (env.name, ENV_NAME), (file_model.name, "name"))
    token = _first_given(
        (flags.token, "--token"), (env.token, ENV_TOKEN), (file_model.token, "token")
    )
    endpoint = _first_given(
        (flags.rpc_endpoint, "--rpc-endpoint"),
        (env.rpc_endpoint, ENV_RPC_ENDPOINT),
        (file_model.rpc.endpoint if file_model.rpc else None, "rpc.endpoint"),
    )
    if endpoint is not None and endpoint.origin != "rpc.endpoint":
        try:
            check_endpoint(endpoint.value)
        except ValueError as error:
            raise ConfigError(endpoint.origin, str(error)) from None

    worker_name = name.value if name else default_worker_name(hostname)
    if not worker_name:
        raise ConfigError("name", "must provide a worker name (the host name is empty)")

    labels = dict(file_model.labels or {})
    labels.update(_parse_pairs(flags.labels, "--labels"))
    resources = dict(file_model.resources or {})
    resources.update(
        {
            key: _parse_amount(key, value)
            for key, value in _parse_pairs(flags.resources, "--resources")
        }
    )

    return WorkerConfig(
        name=worker_name,
        labels=frozen_str_map(labels),
        resources=frozen_float_map(resources),
        upstreams=_upstreams(file_model, token, endpoint),
        log=_log_settings(file_model),
        tuning_vetu_mtu=(
            file_model.tuning.vetu.mtu if file_model.tuning and file_model.tuning.vetu else 0
        ),
        tart_pre_pull=_tart_pre_pull(file_model),
        security=security_policy_from(file_model.security),
        modifiers=resource_modifiers_from(file_model.resource_modifiers or []),
        standby_parameters=standby_from(file_model.standby),
    )


def _first_given(*candidates: tuple[str | None, str]) -> _Setting | None:
    """Return the first candidate that is set and not empty, with its origin."""
    for value, origin in candidates:
        if value:
            return _Setting(value, origin)
    return None


def _parse_pairs(values: Iterable[str], flag: str) -> list[tuple[str, str]]:
    """Split repeated ``k=v[,k=v]`` flag values into pairs, in order."""
    pairs: list[tuple[str, str]] = []
    for value in values:
        for item in value.split(","):
            key, equals, val = item.partition("=")
            if not equals or not key.strip():
                raise ConfigError(flag, f"expected key=value[,key=value], got {item!r}")
            pairs.append((key.strip(), val.strip()))
    return pairs


def _parse_amount(key: str, text: str) -> float:
    """Return a ``--resources`` value as a non-negative finite number."""
    try:
        amount = float(text)
    except ValueError:
        raise ConfigError("--resources", f"{key}={text}: {text!r} is not a number") from None
    if not math.isfinite(amount) or amount < 0:
        raise ConfigError("--resources", f"{key}={text}: must be a finite number >= 0")
    return amount


def _upstreams(
    file_model: WorkerFileModel, token: _Setting | None, endpoint: _Setting | None
) -> tuple[Upstream, ...]:
    """Return the controllers to register with: ``upstreams``, or one from ``token``/``rpc``."""
    if not file_model.upstreams:
        return (
            Upstream(
                endpoint.value if endpoint else DEFAULT_RPC_ENDPOINT, token.value if token else ""
            ),
        )
    for setting, key in ((token, "token"), (endpoint, "rpc")):
        if setting is not None:
            raise ConfigError(
                "upstreams",
                f'"upstreams" and "{key}" are mutually exclusive ({_where(setting)})',
            )
    return tuple(
        Upstream(entry.endpoint or DEFAULT_RPC_ENDPOINT, entry.token)
        for entry in file_model.upstreams
    )


def _where(setting: _Setting) -> str:
    """Say where a setting came from: ``set by --token``, ``set in the file``."""
    if setting.origin.startswith(("--", "CIRRUS_")):
        return f"set by {setting.origin}"
    return "set in the file"


def _log_settings(file_model: WorkerFileModel) -> LogSettings:
    """Return the ``log`` section with its defaults applied."""
    log = file_model.log
    if log is None:
        return LogSettings()
    return LogSettings(
        level=log.level or "info",
        file=log.file or None,
        rotate_size_bytes=log.rotate_size,
        max_rotations=log.max_rotations or 0,
    )


def _tart_pre_pull(file_model: WorkerFileModel) -> TartPrePull:
    """Return the ``tart-pre-pull`` section (nothing to pull when absent)."""
    pre_pull = file_model.tart_pre_pull
    if pre_pull is None:
        return TartPrePull()
    return TartPrePull(
        images=tuple(pre_pull.images),
        check_interval_seconds=pre_pull.check_interval,
        jitter_seconds=pre_pull.jitter,
    )


def _volume_rules(rules: list[VolumeRuleModel]) -> tuple[VolumeRule, ...]:
    return tuple(VolumeRule(rule.source, rule.force_readonly) for rule in rules)


def _allowed_isolations(model: AllowedIsolationsModel) -> AllowedIsolations:
    container = model.container
    tart = model.tart
    vetu = model.vetu
    return AllowedIsolations(
        none=NonePolicy() if model.none is not None else None,
        container=(
            ContainerPolicy(
                allowed_images=tuple(container.allowed_images or ()),
                allowed_volumes=(
                    _volume_rules(container.allowed_volumes)
                    if container.allowed_volumes is not None
                    else None
                ),
            )
            if container is not None
            else None
        ),
        tart=(
            TartPolicy(
                allowed_images=tuple(tart.allowed_images or ()),
                allowed_volumes=_volume_rules(tart.allowed_volumes or []),
                force_softnet=tart.force_softnet,
                softnet_allow=tuple(tart.softnet_allow or ()),
            )
            if tart is not None
            else None
        ),
        vetu=VetuPolicy(tuple(vetu.allowed_images or ())) if vetu is not None else None,
        parallels=ParallelsPolicy() if model.parallels is not None else None,
    )


def security_policy_from(model: SecurityModel | None) -> SecurityPolicy:
    """Return the domain policy of a ``security`` section (absent: every isolation allowed)."""
    if model is None or model.allowed_isolations is None:
        return SecurityPolicy()
    return SecurityPolicy(_allowed_isolations(model.allowed_isolations))


def resource_modifiers_from(models: list[ResourceModifierModel]) -> tuple[ResourceModifier, ...]:
    """Return the domain resource modifiers in configuration order."""
    return tuple(
        ResourceModifier(
            match=frozen_float_map(model.match),
            run_args=tuple(model.append.run) if model.append else (),
        )
        for model in models
    )


def standby_from(model: StandbyModel | None) -> StandbyParameters | None:
    """Return the domain standby parameters of a ``standby`` section."""
    if model is None:
        return None
    if model.isolation is None:
        raise ConfigError("standby.isolation", "isolation configuration is required for standby")
    tart = model.isolation.tart
    vetu = model.isolation.vetu
    isolation: TartIsolation | VetuIsolation
    if tart is not None:
        isolation = TartIsolation(
            image=tart.image,
            user=tart.user,
            password=tart.password,
            cpu=tart.cpu,
            memory=tart.memory,
            softnet=tart.softnet,
            display=tart.display,
            volumes=tuple(
                TartVolume(
                    name=volume.name,
                    source=volume.source,
                    target=volume.target,
                    read_only=volume.readonly,
                )
                for volume in tart.volumes
            ),
            port=tart.port,
        )
    else:
        assert vetu is not None  # the model guarantees exactly one of them
        isolation = VetuIsolation(
            image=vetu.image,
            user=vetu.user,
            password=vetu.password,
            cpu=vetu.cpu,
            memory=vetu.memory,
            networking=VetuHost() if vetu.networking is not None else None,
            disk_size=vetu.disk_size,
            port=vetu.port,
        )
    warmup = model.warmup
    return StandbyParameters(
        isolation=isolation,
        resources=frozen_float_map(model.resources),
        warmup=Warmup(warmup.script, warmup.timeout) if warmup else Warmup(),
    )
