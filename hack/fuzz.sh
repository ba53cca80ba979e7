#!/usr/bin/env bash
# Runs every fuzz target of the module (func FuzzXxx in a _test.go file) for a fixed time each:
#   bash hack/fuzz.sh 30s   # make fuzz
#   bash hack/fuzz.sh 3s    # what make test runs
# Go fuzzes one target per invocation, so targets run one after the other; a failure stops the
# script and leaves the failing input in the package's testdata/fuzz for `go test` to replay.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${1:-30s}"
count=0
while IFS=: read -r file line; do
  dir="./$(dirname "$file")"
  name="$(sed -n "${line}p" "$file" | sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/')"
  echo "fuzz ${dir} ${name} (${fuzztime})"
  go test "$dir" -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime"
  count=$((count + 1))
done < <(git ls-files '*_test.go' | xargs grep -n '^func Fuzz' | cut -d: -f1,2 | sort)
echo "fuzzed ${count} targets for ${fuzztime} each"
