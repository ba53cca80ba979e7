#!/usr/bin/env bash
# Runs every fuzz target of the module (func FuzzXxx in a _test.go file) for a fixed time each:
#   bash hack/fuzz.sh 30s   # make fuzz
#   bash hack/fuzz.sh 3s    # what make test runs
# Go fuzzes one target per invocation, so targets run one after the other; a failure stops the
# script and leaves the failing input in the package's testdata/fuzz for `go test` to replay.
#
# Go 1.26's fuzzing coordinator can fail a target with a bare "context deadline exceeded" as
# -fuzztime runs out, when a worker is slow to stop on a busy machine (golang/go#75804, fixed in
# Go 1.27). That failure finds nothing: a real finding always writes its input ("Failing input
# written to"). Such a run is tried again, up to twice; any other failure fails at once.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-30s}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# fuzz_one fuzzes one target, trying it again after a failure that is only golang/go#75804.
fuzz_one() {
  local dir="$1" name="$2" try
  for try in 1 2 3; do
    if go test "$dir" -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" 2>&1 | tee "$log"; then
      return 0
    fi
    if [ "$try" -eq 3 ] || ! grep -q 'context deadline exceeded' "$log" ||
      grep -qE 'Failing input written|panic:|_test\.go:[0-9]+:' "$log"; then
      return 1
    fi
    echo "fuzz ${dir} ${name}: stopped on Go's fuzztime deadline race (golang/go#75804), nothing found; trying again"
  done
  return 1
}

count=0
while IFS=: read -r file line; do
  dir="./$(dirname "$file")"
  name="$(sed -n "${line}p" "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/')"
  echo "fuzz ${dir} ${name} (${fuzztime})"
  fuzz_one "$dir" "$name"
  count=$((count + 1))
done < <(git ls-files '*_test.go' | xargs grep -n '^func Fuzz' | cut -d: -f1,2 | sort)
echo "fuzzed ${count} targets for ${fuzztime} each"
