package procs

import (
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBufferConcurrent(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_, _ = b.Write([]byte("x"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if got := len(b.String()); got != 800 {
		t.Errorf("%d bytes written, want 800", got)
	}
}

func needSh(t *testing.T) string {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal("sh not found")
	}
	return sh
}

// TestStartStop: output is collected, SIGTERM stops the process, and Done
// and Err report its exit.
func TestStartStop(t *testing.T) {
	p := Start(t, "sleeper", exec.Command(needSh(t), "-c", `trap 'exit 0' TERM; echo ready; while :; do sleep 0.05; done`))
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.Out.String(), "ready") {
		if time.Now().After(deadline) {
			t.Fatalf("no output within 5s: %q", p.Out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-p.Done():
		t.Fatal("exited early")
	default:
	}
	p.Stop(t)
	select {
	case <-p.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if p.Err() != nil {
		t.Errorf("Err after a clean exit: %v", p.Err())
	}
}

func TestKill(t *testing.T) {
	p := Start(t, "sleeper", exec.Command(needSh(t), "-c", "sleep 30"))
	p.Kill()
	if p.Err() == nil {
		t.Error("Err nil after SIGKILL")
	}
}
