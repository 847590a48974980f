#!/usr/bin/env bash
# Runs the side-by-side benchmark of dlock, etcd and ZooKeeper on this machine and writes
# docs/benchmarks.md and docs/benchmarks.png. Arguments go to bench/cmd/compare (e.g. -quick for a
# smoke run, -rounds 5, -duration 20s). Not part of CI: a full run takes about 16 minutes.
#
# Installs Debian's etcd-server and zookeeper packages if they are missing (install-peers.sh; run as
# root), builds dlock from this work tree, and runs compare from the bench module, which alone
# depends on etcd's and ZooKeeper's clients.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

"$root/bench/install-peers.sh"

bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
(cd "$root" && CGO_ENABLED=0 go build -o "$bin/dlock" ./cmd/dlock)
(cd "$root/bench" && go build -o "$bin/compare" ./cmd/compare)

cd "$root"
"$bin/compare" -dlock "$bin/dlock" -out docs/benchmarks.md -png docs/benchmarks.png \
	-command "bench/run.sh $*" "$@"
