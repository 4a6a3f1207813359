package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestLifecycle(t *testing.T) {
	s := Start(t, "--maxmemory", "1mb")
	if !strings.HasPrefix(s.Addr, "127.0.0.1:") {
		t.Fatalf("Addr = %q, want a 127.0.0.1 address", s.Addr)
	}
	if err := ping(s.Addr, time.Second); err != nil {
		t.Fatalf("ping after Start: %v", err)
	}
	c := s.Client()
	ctx := t.Context()
	mm, err := c.ConfigGet(ctx, "maxmemory").Result()
	if err != nil {
		t.Fatal(err)
	}
	if mm["maxmemory"] != "1048576" {
		t.Errorf("extra args not applied: maxmemory = %q", mm["maxmemory"])
	}
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}

	s.Pause()
	if err := ping(s.Addr, 200*time.Millisecond); err == nil {
		t.Fatal("a paused server answered PING")
	}
	s.Resume()
	if err := ping(s.Addr, 2*time.Second); err != nil {
		t.Fatalf("ping after Resume: %v", err)
	}

	s.Kill()
	s.Kill() // idempotent
	if err := ping(s.Addr, 200*time.Millisecond); err == nil {
		t.Fatal("a killed server answered PING")
	}

	s.Restart()
	if err := ping(s.Addr, time.Second); err != nil {
		t.Fatalf("ping after Restart: %v", err)
	}
	ctx2, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	n, err := s.Client().Exists(ctx2, "k").Result()
	if err != nil || n != 0 {
		t.Errorf("after Restart EXISTS k = %d, %v; want 0 (no persistence)", n, err)
	}
}

// TestPausedCleanup leaves a server paused; the cleanup must still end it.
func TestPausedCleanup(t *testing.T) {
	var pid int
	t.Run("inner", func(t *testing.T) {
		s := Start(t)
		s.Pause()
		pid = s.cmd.Process.Pid
	})
	if pid == 0 {
		t.Fatal("inner test did not start a server")
	}
	// After the subtest's cleanup, the process is gone and reaped.
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d: kill -0 = %v, want ESRCH (gone)", pid, err)
	}
}

func TestStartN(t *testing.T) {
	srv := StartN(t, 3)
	seen := map[string]bool{}
	for _, a := range Addrs(srv) {
		if seen[a] {
			t.Errorf("address %s used twice", a)
		}
		seen[a] = true
		if err := ping(a, time.Second); err != nil {
			t.Errorf("ping %s: %v", a, err)
		}
	}
}

func TestFreePort(t *testing.T) {
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		t.Fatalf("port %d not free: %v", p, err)
	}
	l.Close()
}

func TestStartFailsOnBadArgs(t *testing.T) {
	s := &Server{t: t, bin: Bin(t), dir: t.TempDir(), args: []string{"--no-such-option", "x"}}
	var err error
	s.Port, err = FreePort()
	if err != nil {
		t.Fatal(err)
	}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port))
	err = s.start()
	if err == nil {
		s.Kill()
		t.Fatal("start with a bad option succeeded")
	}
	if !strings.Contains(err.Error(), "exited") {
		t.Errorf("err = %v, want the early exit noticed", err)
	}
}

// TestStartNoticesTakenPort: a server already on the port is not taken for
// the one being started.
func TestStartNoticesTakenPort(t *testing.T) {
	other := Start(t)
	s := &Server{t: t, bin: Bin(t), dir: t.TempDir(), Port: other.Port, Addr: other.Addr}
	if err := s.start(); err == nil {
		s.Kill()
		t.Fatal("start on a port in use succeeded")
	}
	if err := ping(other.Addr, time.Second); err != nil {
		t.Errorf("the other server: %v", err)
	}
}

// ping sends an inline PING and expects +PONG within timeout.
func ping(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}
