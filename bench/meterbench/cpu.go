package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// cpuSample is the CPU time used so far by this process (the meters and
// the embedded NATS server) and by the local Postgres server.
type cpuSample struct {
	self, postgres time.Duration
}

// sampleCPU reads this process's CPU time and the local Postgres
// server's. Postgres time is the user+system time of every live process
// named "postgres" plus the time of the children they reaped (the
// postmaster reaps exited backends and autovacuum workers). It is only
// meaningful when -db is a Postgres on this machine; it reads zero when
// /proc is unreadable.
func sampleCPU() cpuSample {
	var s cpuSample
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if open < 0 || end < open || string(b[open+1:end]) != "postgres" {
			continue
		}
		// After "comm)": state is field 3; utime, stime, cutime, cstime
		// are fields 14..17.
		f := bytes.Fields(b[end+1:])
		if len(f) < 15 {
			continue
		}
		for _, v := range f[11:15] {
			n, _ := strconv.ParseInt(string(v), 10, 64)
			s.postgres += time.Duration(n) * time.Second / clockTicks
		}
	}
	return s
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on
// Linux everywhere in practice).
const clockTicks = 100

// perRecord is the CPU time between a and b divided by n records, in µs.
func perRecord(a, b cpuSample, n uint64) (self, postgres float64) {
	if n == 0 {
		return 0, 0
	}
	return float64(b.self-a.self) / float64(time.Microsecond) / float64(n),
		float64(b.postgres-a.postgres) / float64(time.Microsecond) / float64(n)
}
