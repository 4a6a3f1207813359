package deploy

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// syncBuffer collects a process's output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// daemon is one of the built binaries, running.
type daemon struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

// startDaemon runs a built binary with args and no SHARDNS_ variables from
// the test's environment, and stops it when the test ends; its log is
// printed if the test failed.
func startDaemon(t *testing.T, name string, args ...string) *daemon {
	t.Helper()
	d := &daemon{name: name, out: &syncBuffer{}, done: make(chan struct{})}
	d.cmd = exec.Command(bin(name), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SHARDNS_") {
			d.cmd.Env = append(d.cmd.Env, kv)
		}
	}
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.stop(t)
		if t.Failed() {
			t.Logf("%s %v log:\n%s", name, args, d.out.String())
		}
	})
	return d
}

// stop sends SIGTERM and waits; the daemon must exit 0 within 10 s.
func (d *daemon) stop(t *testing.T) {
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		if d.err != nil {
			t.Errorf("%s exited with %v after SIGTERM", d.name, d.err)
		}
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
		t.Errorf("%s did not exit within 10s of SIGTERM", d.name)
	}
}

// waitFor polls check until it succeeds, failing the test after 20 s or
// when d exits.
func waitFor(t *testing.T, d *daemon, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		select {
		case <-d.done:
			t.Fatalf("%s exited before %s: %v", d.name, what, d.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s within 20s: %v", d.name, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testZones writes a folder with the zone example.test, served by
// resolverd's and dnsd's -zones.
func testZones(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	zone := strings.Join([]string{
		"$ORIGIN example.test.",
		"$TTL 300",
		"@ IN SOA ns hostmaster 1 7200 900 1209600 60",
		"@ IN NS ns",
		"ns IN A 127.0.0.1",
		"www IN A 192.0.2.10",
		"www IN AAAA 2001:db8::10",
		"",
	}, "\n")
	if err := os.WriteFile(filepath.Join(dir, "example.test.zone"), []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runProbe runs the built healthcheck with args and returns its exit code
// and output.
func runProbe(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin("healthcheck"), args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("healthcheck %v: %v", args, err)
	}
	return 0, string(out)
}
