package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/testutil/procs"
)

// daemon is one of the built binaries, running.
type daemon = procs.Proc

// startDaemon runs a built binary with args and no SHARDNS_ variables from
// the test's environment (nor a NOTIFY_SOCKET of the service running the
// tests), and stops it (SIGTERM; it must exit 0) when the test ends; its
// log is printed if the test failed.
func startDaemon(t *testing.T, name string, args ...string) *daemon {
	t.Helper()
	if name == "dnsd" {
		args = procs.WithFlag(args, "http", "") // not the default port: see procs.WithFlag
	}
	cmd := exec.Command(bin(name), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SHARDNS_") && !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return procs.Start(t, name, cmd)
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
		case <-d.Done():
			t.Fatalf("%s exited before %s: %v", d.Name, what, d.Err())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s within 20s: %v", d.Name, what, err)
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
