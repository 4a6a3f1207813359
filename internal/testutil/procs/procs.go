// Package procs runs programs, most often the repository's own built
// binaries, as child processes of a test: their output is collected, and
// each is stopped when its test ends.
package procs

import (
	"bytes"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StopWait bounds how long Stop waits for a process to exit after SIGTERM.
const StopWait = 10 * time.Second

// Buffer is a bytes.Buffer safe for concurrent use: a process's stdout and
// stderr, or a logger's output shared with a test.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Proc is a started process.
type Proc struct {
	Name string    // for messages
	Cmd  *exec.Cmd // started; Cmd.Process is set
	Out  *Buffer   // stdout and stderr

	done chan struct{} // closed once Cmd has been waited for
	err  error         // Cmd.Wait's result, set before done is closed
}

// Start starts cmd with its stdout and stderr collected in Out. When the
// test ends the process is stopped as Stop does, and its output is logged
// if the test failed.
func Start(t testing.TB, name string, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{Name: name, Cmd: cmd, Out: &Buffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.Out, p.Out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s (%s): %v", name, strings.Join(cmd.Args, " "), err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop(t)
		if t.Failed() {
			t.Logf("%s (%s) log:\n%s", name, strings.Join(cmd.Args, " "), p.Out.String())
		}
	})
	return p
}

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's exit error, nil for exit status 0. It is only
// meaningful once Done is closed.
func (p *Proc) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Stop sends SIGTERM and waits: the process must exit with status 0
// within StopWait, or the test fails (and the process is killed). A
// process that has already exited is left as it is.
func (p *Proc) Stop(t testing.TB) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("%s exited with %v after SIGTERM", p.Name, p.err)
		}
	case <-time.After(StopWait):
		_ = p.Cmd.Process.Kill()
		<-p.done
		t.Errorf("%s did not exit within %v of SIGTERM", p.Name, StopWait)
	}
}

// Kill ends the process at once, as a crash would, and waits for it.
func (p *Proc) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.done
}
