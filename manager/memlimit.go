package manager

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// The manager's share of its container's memory, for the Go runtime's soft memory limit
// (GOMEMLIMIT): the container's limit, less what the Python workers may hold, less a margin
// for what the runtime does not count (thread stacks, the binary's pages). Near this limit the
// garbage collector works harder instead of letting the heap grow to the next GOGC goal, so
// a burst (a flood of deliveries, a cold replay of many runs) is paid in CPU rather than in an
// OOM kill of the manager.

// MemoryLimitEnv names the environment variable that holds the container's memory limit in
// bytes: config/manager and the chart set it from the downward API
// (resourceFieldRef limits.memory), so that it is the limit even where the cgroup is not
// readable.
const MemoryLimitEnv = "CENTAUR_MEMORY_LIMIT"

// memoryPercent is the share, in percent, of the manager's part of the container's memory
// that its Go heap may use before the collector holds it there.
const memoryPercent = 90

// cgroupLimits are the files of the container's memory limit: cgroup v2, then v1.
var cgroupLimits = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// noCgroupLimit is above any limit cgroup v1 reports when there is none (it says about 2^63).
const noCgroupLimit = int64(1) << 62

// setMemoryLimit sets the runtime's soft memory limit from the container's limit (see
// memoryLimit), unless GOMEMLIMIT is set, which wins; it returns the limit set, 0 when none.
func setMemoryLimit(o Options) (int64, error) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0, nil
	}
	container, err := containerMemory(os.Getenv(MemoryLimitEnv), os.ReadFile)
	if err != nil || container == 0 {
		return 0, err
	}
	limit := memoryLimit(container, o.PythonWorkers, o.PythonCacheRSSBytes)
	if limit <= 0 {
		return 0, fmt.Errorf("the container's memory limit %d bytes leaves nothing to the manager beside %d Python workers of up to %d bytes (--python-cache-rss-bytes)",
			container, o.PythonWorkers, o.PythonCacheRSSBytes)
	}
	debug.SetMemoryLimit(limit)
	return limit, nil
}

// memoryLimit is the manager's soft memory limit in a container of container bytes whose
// workers Python workers may each hold workerBytes (none when negative): memoryPercent of
// what the workers leave.
func memoryLimit(container int64, workers int, workerBytes int64) int64 {
	share := container
	if workerBytes > 0 {
		share -= int64(workers) * workerBytes
	}
	return share / 100 * memoryPercent
}

// containerMemory is the container's memory limit in bytes: env when set (the downward API's
// value), else the cgroup's, read with read; 0 when there is none.
func containerMemory(env string, read func(string) ([]byte, error)) (int64, error) {
	if env != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(env), 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%s=%q is not a number of bytes", MemoryLimitEnv, env)
		}
		return n, nil
	}
	for _, path := range cgroupLimits {
		data, err := read(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("read the container's memory limit: %w", err)
		}
		value := strings.TrimSpace(string(data))
		if value == "max" {
			return 0, nil
		}
		n, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("read the container's memory limit from %s: %q is not a number", path, value)
		}
		if n >= noCgroupLimit {
			return 0, nil
		}
		return n, nil
	}
	return 0, nil
}
