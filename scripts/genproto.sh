#!/usr/bin/env bash
# Regenerates the committed protobuf and gRPC code. Needs protoc,
# protoc-gen-go and protoc-gen-go-grpc on PATH; building dlock never does.
set -euo pipefail
cd "$(dirname "$0")/.."
protoc --proto_path=. \
  --go_out=. --go_opt=paths=source_relative \
  --go-grpc_out=. --go-grpc_opt=paths=source_relative \
  api/dlockv1/dlock.proto internal/fsm/fsmpb/fsm.proto internal/peer/peerpb/peer.proto
