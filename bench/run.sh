#!/usr/bin/env bash
# Runs the side-by-side benchmark of dlock, etcd and ZooKeeper on this machine and writes
# docs/benchmarks.md and docs/benchmarks.png. Arguments go to bench/cmd/compare (e.g. -quick for a
# smoke run, -rounds 5, -duration 20s). Not part of CI: a full run takes about 12 minutes.
#
# Installs Debian's etcd-server and zookeeper packages if they are missing (run as root), builds dlock
# from this work tree, and runs compare from the bench module, which alone depends on etcd's and
# ZooKeeper's clients.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

need=()
[[ -x /usr/bin/etcd ]] || need+=(etcd-server)
[[ -f /usr/share/java/zookeeper.jar ]] || need+=(zookeeper)
command -v java >/dev/null || need+=(default-jre-headless)
if ((${#need[@]})); then
	echo "installing ${need[*]} from Debian's packages" >&2
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
fi
# The packages' own services would hold the default ports and a second copy of the data; the
# benchmark starts its own clusters on free ports, so stop any the packages started.
for svc in etcd zookeeper; do
	if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
		systemctl stop "$svc"
	fi
done

bin="$(mktemp -d)"
trap 'rm -rf "$bin"' EXIT
(cd "$root" && CGO_ENABLED=0 go build -o "$bin/dlock" ./cmd/dlock)
(cd "$root/bench" && go build -o "$bin/compare" ./cmd/compare)

cd "$root"
"$bin/compare" -dlock "$bin/dlock" -out docs/benchmarks.md -png docs/benchmarks.png \
	-command "bench/run.sh $*" "$@"
