package main

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// cgroupMemoryFiles hold a container's memory limit: cgroup v2, then v1.
var cgroupMemoryFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// setMemoryLimit gives the Go runtime a soft memory limit (GOMEMLIMIT) of
// 90% of the container's cgroup memory limit, unless GOMEMLIMIT was set
// (env) or there is no limit, so that the GC works harder before the
// kernel's OOM killer acts. It returns the limit in force (0: none).
// GOMAXPROCS needs no such help: since Go 1.25 the runtime follows the
// cgroup CPU limit itself.
func setMemoryLimit(env string, files []string) int64 {
	if env != "" {
		return debug.SetMemoryLimit(-1) // the runtime already applied it
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 { // "max", or v1's "unlimited" (a huge number)
			return 0
		}
		limit := n / 10 * 9
		debug.SetMemoryLimit(limit)
		return limit
	}
	return 0
}
