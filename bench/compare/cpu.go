package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTick is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// which is 100 on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// processCPU returns the CPU time (user + system, all threads) a process has
// used so far, read from /proc/<pid>/stat. It fails where there is no /proc.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name in parentheses may hold spaces; the fields after
	// it are state, ppid, pgrp, session, tty_nr, tpgid, flags, minflt,
	// cminflt, majflt, cmajflt, utime, stime.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime or stime", pid)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// cpuMeter measures the CPU time a Caddy process and this program spend
// during one run. Where /proc is missing, both read zero.
type cpuMeter struct {
	pids  [2]int // Caddy, this program
	start [2]time.Duration
	ok    bool
}

func startCPU(caddyPID int) cpuMeter {
	m := cpuMeter{pids: [2]int{caddyPID, os.Getpid()}, ok: true}
	for i, pid := range m.pids {
		c, err := processCPU(pid)
		m.start[i], m.ok = c, m.ok && err == nil
	}
	return m
}

// stop returns the CPU time Caddy and this program (the load generator and
// the upstream) used since start.
func (m cpuMeter) stop() (caddy, self time.Duration) {
	if !m.ok {
		return 0, 0
	}
	var used [2]time.Duration
	for i, pid := range m.pids {
		c, err := processCPU(pid)
		if err != nil {
			return 0, 0
		}
		used[i] = c - m.start[i]
	}
	return used[0], used[1]
}
