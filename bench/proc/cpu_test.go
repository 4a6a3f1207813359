package proc

import (
	"os"
	"syscall"
	"testing"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and parentheses, as a process may choose.
	line := "4242 (odd) name (x)) S 1 4200 4200 0 -1 4194560 1000 0 0 0 250 75 3 4 20 0 12 0 100 0 0\n"
	st, err := ParseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if st.Pgrp != 4200 || st.UTime != 250 || st.STime != 75 {
		t.Errorf("%+v, want pgrp 4200, utime 250, stime 75", st)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 x S 1 2 3 4 5 6 7 8 9 10 11 12 13", "1 (x) S 1 y 3 4 5 6 7 8 9 10 11 12 13 14"} {
		if _, err := ParseStat(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestGroupCPU reads this test's own process group (go test's child is
// not a group leader, so it reads the group of the process itself).
// Without /proc (not Linux) it is skipped, or fails when CI is set.
func TestGroupCPU(t *testing.T) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no /proc: ", err)
		}
		t.Skip("no /proc: ", err)
	}
	st, err := ParseStat(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if st.Pgrp != syscall.Getpgrp() {
		t.Fatalf("pgrp %d from /proc, %d from getpgrp", st.Pgrp, syscall.Getpgrp())
	}
	x := 0
	for i := range 50_000_000 { // burn some CPU so the total is not 0
		x ^= i * i
	}
	t.Logf("checksum %d", x)
	d, err := GroupCPU(st.Pgrp)
	if err != nil || d <= 0 {
		t.Errorf("GroupCPU = %v, %v", d, err)
	}
	if _, err := GroupCPU(1 << 30); err == nil {
		t.Error("no error for a group with no process")
	}
}

// FuzzParseStat: /proc text is read as outside input; never a panic.
func FuzzParseStat(f *testing.F) {
	f.Add("1 (init) S 0 1 1 0 -1 4194560 1 0 0 0 5 6 0 0 20 0 1 0 1 0 0")
	f.Add("1 ()) S")
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseStat(s)
	})
}
