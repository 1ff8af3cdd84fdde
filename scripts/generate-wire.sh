#!/bin/sh
# Generates the wire model adapters/wire/ (protobuf messages, gRPC stubs, typed .pyi stubs)
# from proto/ into the source root given as $1 (default src). `make proto` runs it; a test runs
# it into a temporary directory and checks that the checked-in files are what it generates.
# The proto files are mapped to adapters/wire/ so that the generated imports read
# `from adapters.wire import ..._pb2`.
set -eu
out="${1:-src}"
here="$(cd "$(dirname "$0")/.." && pwd)"
bin="$here/.venv/bin"
cd "$here"
mkdir -p "$out/adapters/wire"
protoc() {
	"$bin/python" -m grpc_tools.protoc -Iadapters/wire=proto \
		--plugin=protoc-gen-mypy="$bin/protoc-gen-mypy" \
		--plugin=protoc-gen-mypy_grpc="$bin/protoc-gen-mypy_grpc" \
		--python_out="$out" --mypy_out=quiet:"$out" "$@" 2>&1
}
protoc proto/cirrus_worker_additions.proto
# Only this file declares services.
protoc --grpc_python_out="$out" --mypy_grpc_out=quiet:"$out" proto/cirrus_ci_service.proto
