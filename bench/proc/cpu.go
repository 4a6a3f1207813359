package proc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, 100
// on every Linux architecture Go supports).
const userHZ = 100

// CPU returns the user plus system CPU time used so far by every live
// process of p's process group (a server and the children it forked), all
// threads included.
func (p *Proc) CPU() (time.Duration, error) {
	return GroupCPU(p.Pid())
}

// GroupCPU sums utime+stime over the live processes whose process group is
// pgid, read from /proc.
func GroupCPU(pgid int) (time.Duration, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("proc: %w", err)
	}
	var ticks uint64
	found := false
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		st, err := ParseStat(string(b))
		if err != nil || st.Pgrp != pgid {
			continue
		}
		found = true
		ticks += st.UTime + st.STime
	}
	if !found {
		return 0, fmt.Errorf("proc: no live process in group %d", pgid)
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// Stat is the part of /proc/<pid>/stat this package reads.
type Stat struct {
	Pgrp         int
	UTime, STime uint64 // clock ticks
}

// ParseStat reads a /proc/<pid>/stat line. The command name, in
// parentheses, may itself hold spaces and parentheses, so fields are
// counted from the last ')'.
func ParseStat(s string) (Stat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return Stat{}, errors.New("proc: stat: no command name")
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); pgrp is field 5, utime 14, stime 15.
	if len(f) < 13 {
		return Stat{}, fmt.Errorf("proc: stat: %d fields", len(f)+2)
	}
	pg, err1 := strconv.Atoi(f[2])
	ut, err2 := strconv.ParseUint(f[11], 10, 64)
	stime, err3 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return Stat{}, fmt.Errorf("proc: stat: %w", err)
	}
	return Stat{Pgrp: pg, UTime: ut, STime: stime}, nil
}
