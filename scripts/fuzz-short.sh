#!/usr/bin/env bash
# Runs every Go fuzz target in the repository for a short time each, one
# after another, and fails if any of them fails. Targets are found by grep
# (func FuzzXxx(f *testing.F) in a _test.go file), so new ones join without
# editing this script.
#
#   FUZZTIME          time per target, as go test -fuzztime takes it (default 10s)
#   FUZZMINIMIZETIME  bound on minimizing one input (default 200x: 200 runs of
#                     the target; go's own is 60s). Go minimizes every new
#                     interesting input and counts none of those runs, so a
#                     time bound stalls a short run: FuzzParse made 1,611
#                     executions in 10s with 5s, 152,451 with 200x.
#
# A failure leaves the failing input in the package's testdata/fuzz/<Name>/,
# where plain `go test` replays it: commit it with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime="${FUZZTIME:-10s}"
minimizetime="${FUZZMINIMIZETIME:-200x}"

# "dir name" per target, sorted for a stable order.
targets="$(grep -rEo --include='*_test.go' --exclude-dir=vendor --exclude-dir=testdata \
	'^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . |
	sed -E 's#^(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]*).*#\1 \2#' | sort -u)"

if [[ -z "$targets" ]]; then
	echo "fuzz-short: no fuzz targets found" >&2
	exit 1
fi

failed=()
start=$SECONDS
while read -r dir name; do
	echo "=== $name ($dir, $fuzztime)"
	t0=$SECONDS
	corpus="$dir/testdata/fuzz/$name"
	before="$(ls "$corpus" 2>/dev/null || true)"
	out="$(mktemp)"
	if go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" -fuzzminimizetime="$minimizetime" "$dir" 2>&1 | tee "$out"; then
		echo "--- ok   $name ($((SECONDS - t0))s)"
	elif [[ "$(ls "$corpus" 2>/dev/null || true)" == "$before" ]] &&
		grep -q '^    context deadline exceeded$' "$out"; then
		# Go's fuzzing coordinator can report its own -fuzztime deadline as a
		# failure when a worker is mid-input as it expires (go.dev/issue/75804,
		# fixed in Go 1.27). A real failure writes its input to the corpus.
		echo "--- ok   $name ($((SECONDS - t0))s; the fuzztime deadline was reported as a failure, and no failing input was written: go.dev/issue/75804)"
	else
		echo "--- FAIL $name ($((SECONDS - t0))s)"
		failed+=("$name ($dir)")
	fi
	rm -f "$out"
done <<<"$targets"

echo "fuzz-short: $(wc -l <<<"$targets") targets in $((SECONDS - start))s"
if ((${#failed[@]} > 0)); then
	printf 'fuzz-short: FAILED: %s\n' "${failed[@]}" >&2
	exit 1
fi
