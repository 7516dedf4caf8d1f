// Package procstat reads a Linux process's CPU time and memory from /proc, for the figures a
// benchmark reports per measured process.
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat. It is 100 on every
// Linux architecture Go supports (the kernel fixes it for user space).
const clockTicks = 100

// Sample is one reading of a process.
type Sample struct {
	// CPU is user + system time since the process started (utime+stime).
	CPU time.Duration
	// PeakRSS is VmHWM: the most resident memory since start, or since the last ResetPeak.
	PeakRSS int64
	// RSS is VmRSS, resident memory now.
	RSS int64
}

// Read samples pid.
func Read(pid int) (Sample, error) {
	var s Sample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("read cpu time of pid %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces: fields are counted
	// from the last ')'.
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return s, fmt.Errorf("pid %d: unexpected /proc stat line %q", pid, stat)
	}
	f := strings.Fields(string(stat[end+1:]))
	// After ')': state(3) ppid(4) ... utime(14) stime(15): indexes 11 and 12 here.
	if len(f) < 13 {
		return s, fmt.Errorf("pid %d: short /proc stat line %q", pid, stat)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("pid %d: unexpected utime/stime %q %q", pid, f[11], f[12])
	}
	s.CPU = time.Duration(ut+st) * time.Second / clockTicks

	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *int64
		switch name {
		case "VmHWM":
			dst = &s.PeakRSS
		case "VmRSS":
			dst = &s.RSS
		default:
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return s, fmt.Errorf("pid %d: unexpected %s line %q", pid, name, line)
		}
		*dst = kb * 1024
	}
	return s, nil
}

// ResetPeak sets pid's VmHWM back to its current RSS (writing 5 to clear_refs, Linux 4.0+), so
// a long-lived process's peak can be read per measurement.
func ResetPeak(pid int) error {
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		return fmt.Errorf("reset peak RSS of pid %d: %w", pid, err)
	}
	return nil
}

// Busy returns the CPU time all processes of the machine have used since boot (user, nice,
// system, irq, softirq and steal of /proc/stat's "cpu" line), summed over cores.
func Busy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, fmt.Errorf("read machine cpu time: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("unexpected /proc/stat line %q", line)
	}
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system (idle iowait) irq softirq steal
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("unexpected /proc/stat line %q", line)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
