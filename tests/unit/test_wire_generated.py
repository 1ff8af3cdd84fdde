"""The checked-in wire model (src/adapters/wire/) is exactly what `make proto` generates."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WIRE = ROOT / "src" / "adapters" / "wire"


def _generated(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.glob("*_pb2*"))}


def test_regenerating_the_wire_model_from_proto_changes_no_byte(tmp_path: Path) -> None:
    subprocess.run(
        ["sh", str(ROOT / "scripts" / "generate-wire.sh"), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    fresh = _generated(tmp_path / "adapters" / "wire")
    checked_in = _generated(WIRE)
    assert sorted(fresh) == sorted(checked_in)
    changed = [name for name in fresh if fresh[name] != checked_in[name]]
    assert changed == [], f"run `make proto`: {changed} differ from proto/"


def test_project_additions_are_numbered_from_100_so_they_cannot_collide() -> None:
    from adapters.wire import cirrus_ci_service_pb2 as wire
    from adapters.wire import cirrus_worker_additions_pb2 as additions

    additions_fields = {
        wire.WorkerInfo.DESCRIPTOR.fields_by_name["security_policy"].number,
        wire.Isolation.Container.DESCRIPTOR.fields_by_name["additional_containers"].number,
        wire.Isolation.Tart.DESCRIPTOR.fields_by_name["nested"].number,
        wire.Isolation.Vetu.DESCRIPTOR.fields_by_name["standard_output_to_logs"].number,
        additions.AppendLogsRequest.DESCRIPTOR.fields_by_name["offset"].number,
    }
    assert additions_fields == {100}
    assert wire.DESCRIPTOR.package == "org.cirruslabs.ci.services.cirruscigrpc"
