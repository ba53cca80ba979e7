package manager

import (
	"io/fs"
	"testing"
)

// TestMemoryLimitIsTheManagersShareOfTheContainer checks the soft memory limit the manager
// sets: config/manager's 768 MiB container less two Python workers of 128 MiB leaves 512 MiB,
// of which the heap may use 90 %.
func TestMemoryLimitIsTheManagersShareOfTheContainer(t *testing.T) {
	const mib = 1 << 20
	cases := []struct {
		name        string
		container   int64
		workers     int
		workerBytes int64
		want        int64
	}{
		{"config/manager", 768 * mib, 2, 128 * mib, 512 * mib / 100 * 90},
		{"no bound on the workers' memory", 768 * mib, 2, -1, 768 * mib / 100 * 90},
		{"no workers", 256 * mib, 0, 128 * mib, 256 * mib / 100 * 90},
	}
	for _, tc := range cases {
		if got := memoryLimit(tc.container, tc.workers, tc.workerBytes); got != tc.want {
			t.Errorf("%s: memoryLimit = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestContainerMemoryReadsTheDownwardAPIThenTheCgroup checks where the container's limit comes
// from: the environment first, then cgroup v2, then v1; none when the cgroup says there is none.
func TestContainerMemoryReadsTheDownwardAPIThenTheCgroup(t *testing.T) {
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(path string) ([]byte, error) {
			if v, ok := m[path]; ok {
				return []byte(v), nil
			}
			return nil, fs.ErrNotExist
		}
	}
	cases := []struct {
		name    string
		env     string
		files   map[string]string
		want    int64
		wantErr bool
	}{
		{"downward API", "805306368", map[string]string{"/sys/fs/cgroup/memory.max": "1"}, 805306368, false},
		{"cgroup v2", "", map[string]string{"/sys/fs/cgroup/memory.max": "805306368\n"}, 805306368, false},
		{"cgroup v2 without a limit", "", map[string]string{"/sys/fs/cgroup/memory.max": "max\n"}, 0, false},
		{"cgroup v1", "", map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "805306368\n"}, 805306368, false},
		{"cgroup v1 without a limit", "", map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0, false},
		{"no cgroup", "", nil, 0, false},
		{"a bad value", "768Mi", nil, 0, true},
	}
	for _, tc := range cases {
		got, err := containerMemory(tc.env, files(tc.files))
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s: containerMemory = %d, %v; want %d (error %v)", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}
