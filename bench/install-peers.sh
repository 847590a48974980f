#!/usr/bin/env bash
# Installs what the comparison runs dlock against, from Debian's packages, where missing: etcd-server,
# zookeeper and a Java runtime for ZooKeeper (run as root). bench/run.sh and CI's integration tests of
# bench/cluster both need them.
set -euo pipefail

need=()
[[ -x /usr/bin/etcd ]] || need+=(etcd-server)
[[ -f /usr/share/java/zookeeper.jar ]] || need+=(zookeeper)
command -v java >/dev/null || need+=(default-jre-headless)
if ((${#need[@]})); then
	echo "installing ${need[*]} from Debian's packages" >&2
	# Retries ride out a mirror's passing failure, which would otherwise fail a CI run.
	apt-get -o Acquire::Retries=3 update
	DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=3 install -y --no-install-recommends "${need[@]}"
fi
# The packages' own services would hold the default ports and a second copy of the data; the
# benchmark starts its own clusters on free ports, so stop any the packages started.
for svc in etcd zookeeper; do
	if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
		systemctl stop "$svc"
	fi
done
