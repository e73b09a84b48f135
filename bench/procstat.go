package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// cpuTicks is a process's user + system time in clock ticks (USER_HZ,
// 100 a second on Linux), from /proc/PID/stat.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, may hold spaces: count from after it.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	return utime + stime, errors.Join(err1, err2)
}

// cpuNanos is a process's CPU time in ns, the sum over its threads of
// /proc/PID/task/TID/schedstat's first field: cpuTicks to the
// nanosecond, for spans too short for 10 ms ticks (a proxy's few hundred
// ms of CPU over an open loop). A thread that ends between the listing
// and the read is left out, and so is the time of threads already gone:
// Go keeps its threads, so neither happens in a steady run.
func cpuNanos(pid int) (int64, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, errors.New("empty /proc schedstat")
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc schedstat: %w", err)
		}
		sum += ns
	}
	return sum, nil
}

// userHZ is the unit of cpuTicks.
const userHZ = 100

// rssMiB is a process's resident memory now, from /proc/PID/status.
func rssMiB(pid int) (float64, error) { return statusMiB(pid, "VmRSS") }

// peakRSSMiB is a process's peak resident memory (its high-water mark),
// from /proc/PID/status.
func peakRSSMiB(pid int) (float64, error) { return statusMiB(pid, "VmHWM") }

// statusMiB is the field (a size in kB) of /proc/PID/status, in MiB.
func statusMiB(pid int, field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no " + field)
}
