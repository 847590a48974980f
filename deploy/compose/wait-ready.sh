#!/bin/sh
# wait-ready.sh DLOCK TIMEOUT_SECONDS ENDPOINT...
#
# Waits until every ENDPOINT answers `dlock cluster status` as ready (it knows
# a leader that serves) and one of them is that serving leader, then prints
# the leader's status. Exits 1 with the last answers if that takes longer
# than TIMEOUT_SECONDS. `make start` runs it with the host-built binary.
set -u
dlock=$1 timeout=$2
shift 2
deadline=$(( $(date +%s) + timeout ))
last=""
while :; do
	ready=0 leader=""
	for ep in "$@"; do
		out=$("$dlock" cluster status -o json --timeout 1s --endpoints "$ep" 2>&1) || { last="$ep: $out"; continue; }
		case $out in *'"ready": true'*) ready=$((ready + 1)) ;; *) last="$ep: not ready" ;; esac
		case $out in *'"state": "Leader"'*) leader=$ep ;; esac
	done
	if [ "$ready" -eq $# ] && [ -n "$leader" ]; then
		"$dlock" cluster status --endpoints "$leader"
		exit 0
	fi
	if [ "$(date +%s)" -ge "$deadline" ]; then
		echo "dlock: cluster not ready after ${timeout}s; last: ${last:-no leader yet}" >&2
		exit 1
	fi
	sleep 0.2
done
