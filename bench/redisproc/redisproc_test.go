package redisproc

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/shardns/shardns/bench/proc"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

func newGroup(t *testing.T) *proc.Group {
	g := proc.NewGroup(t.TempDir(), slog.New(slog.DiscardHandler))
	t.Cleanup(g.StopAll)
	return g
}

// TestStartAnswersWithArgs starts a server whose Args override a default
// (appendonly) and checks it answers as the process started, with them.
func TestStartAnswersWithArgs(t *testing.T) {
	bin := redistest.Bin(t)
	g := newGroup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Start(ctx, Config{Group: g, Name: "r", Bin: bin, Dir: filepath.Join(t.TempDir(), "sub"),
		Args: []string{"--appendonly", "yes", "--maxmemory-policy", "noeviction"}})
	if err != nil {
		t.Fatal(err)
	}
	if host, _, _ := net.SplitHostPort(s.Addr); host != "127.0.0.1" {
		t.Errorf("Addr %s is not on 127.0.0.1", s.Addr)
	}
	pid, err := serverPID(ctx, s.Addr)
	if err != nil || pid != s.Proc.Pid() {
		t.Fatalf("server at %s is process %d (%v), want %d", s.Addr, pid, err, s.Proc.Pid())
	}
	for opt, want := range map[string]string{"appendonly": "yes", "maxmemory-policy": "noeviction", "save": ""} {
		if got := configGet(t, s.Addr, opt); got != want {
			t.Errorf("CONFIG GET %s = %q, want %q", opt, got, want)
		}
	}
	s.Proc.Stop()
	if c, err := net.DialTimeout("tcp", s.Addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Stop", s.Addr)
	}
}

// TestStartFailsClearly gives redis-server an option it refuses: Start
// returns an error holding its log, and nothing is left running.
func TestStartFailsClearly(t *testing.T) {
	bin := redistest.Bin(t)
	g := newGroup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := Start(ctx, Config{Group: g, Name: "bad", Bin: bin, Dir: t.TempDir(), Args: []string{"--no-such-option", "1"}})
	if err == nil {
		t.Fatal("Start with a refused option succeeded")
	}
	if !strings.Contains(err.Error(), "exited while starting") || !strings.Contains(err.Error(), "no-such-option") {
		t.Errorf("error does not say the server exited and why: %v", err)
	}
}

// TestWaitReadyOtherProcess checks that a port answered by another
// redis-server than the process started is reported, not taken.
func TestWaitReadyOtherProcess(t *testing.T) {
	bin := redistest.Bin(t)
	g := newGroup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Start(ctx, Config{Group: g, Name: "r", Bin: bin, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	other, err := g.Start("sleep", "sleep", "30")
	if err != nil {
		t.Fatal(err)
	}
	err = waitReady(ctx, s.Addr, other)
	if err == nil || !strings.Contains(err.Error(), "port taken by process") {
		t.Errorf("waitReady for another process = %v, want port taken", err)
	}
}

func TestMajor(t *testing.T) {
	bin := redistest.Bin(t)
	n, err := Major(context.Background(), bin)
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Errorf("major version %d; Debian ships 5 or later", n)
	}
}

func TestInfoField(t *testing.T) {
	info := "# Server\r\nredis_version:7.0.15\r\nprocess_id:42\r\n"
	if got := InfoField(info, "process_id"); got != "42" {
		t.Errorf("process_id = %q", got)
	}
	if got := InfoField(info, "missing"); got != "" {
		t.Errorf("missing = %q", got)
	}
}

// configGet reads one configuration value.
func configGet(t *testing.T, addr, opt string) string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: 2 * time.Second,
		WriteTimeout: 2 * time.Second, DisableIdentity: true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	m, err := c.ConfigGet(ctx, opt).Result()
	if err != nil {
		t.Fatalf("CONFIG GET %s: %v", opt, err)
	}
	v, ok := m[opt]
	if !ok {
		t.Fatalf("CONFIG GET %s answered %v", opt, m)
	}
	return v
}
