package deploy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/testutil/freeport"
	"github.com/shardns/shardns/internal/testutil/procs"
)

// startNotified runs a built daemon with args, no SHARDNS_ variables from
// the test's environment, and NOTIFY_SOCKET set to notify when not empty.
func startNotified(t *testing.T, name, notify string, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(bin(name), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SHARDNS_") && !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if notify != "" {
		cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+notify)
	}
	return procs.Start(t, name, cmd)
}

// notifyListener is the socket systemd would listen on for sd_notify: it
// returns the socket's path and the states sent to it.
func notifyListener(t *testing.T) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	states := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			states <- string(buf[:n])
		}
	}()
	return path, states
}

// nextState returns the next state d sent, failing after 20 s or when d
// exits first.
func nextState(t *testing.T, d *daemon, states <-chan string) string {
	t.Helper()
	select {
	case s := <-states:
		return s
	case <-d.Done():
		select {
		case s := <-states:
			return s
		case <-time.After(time.Second):
		}
		t.Fatalf("%s exited (%v) before sending a state", d.Name, d.Err())
	case <-time.After(20 * time.Second):
		t.Fatalf("%s sent no state within 20s", d.Name)
	}
	return ""
}

// waitLog waits until d's log matches re, failing after 20 s.
func waitLog(t *testing.T, d *daemon, re string) {
	t.Helper()
	m := regexp.MustCompile(re)
	waitFor(t, d, "a log line matching "+re, func() error {
		if m.MatchString(d.Out.String()) {
			return nil
		}
		return fmt.Errorf("no %s", re)
	})
}

// writeFile writes text to path, failing the test on error.
func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// dnsdConfig is a config file for an all-in-one dnsd answering the test
// zone on listen, with /metrics on metrics; extra lines go in its section.
func dnsdConfig(t *testing.T, zones, listen, metrics string, extra ...string) string {
	t.Helper()
	// No upstreams: the test zone only. The same path on every call, so
	// that a rewritten file changes only what the test changes.
	empty := filepath.Join(filepath.Dir(zones), "resolv.conf")
	writeFile(t, empty, "")
	lines := []string{
		"log-level: info",
		"zones: " + zones,
		"dnsd:",
		"  listen: " + listen,
		"  metrics: " + metrics,
		"  resolv-conf: " + empty,
		"  http: ''",
	}
	for _, e := range extra {
		lines = append(lines, "  "+e)
	}
	return strings.Join(lines, "\n") + "\n"
}

// freeTCPAddr is a free 127.0.0.1 TCP address.
func freeTCPAddr(t *testing.T) string {
	t.Helper()
	p, err := freeport.TCP()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}

// answersWWW checks dnsd at addr answers www.example.test from the zone.
func answersWWW(addr string) error {
	r, err := ask("udp", addr, "www.example.test.", dns.TypeA)
	if err != nil {
		return err
	}
	if len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "192.0.2.10" {
		return fmt.Errorf("answer %v", r.Answer)
	}
	return nil
}

// metricValue reads one unlabelled sample from /metrics at addr.
func metricValue(t *testing.T, addr, name string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("/metrics at %s has no %s", addr, name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSystemdNotify runs each daemon as systemd runs a Type=notify
// unit, with NOTIFY_SOCKET on a socket the test owns: READY=1 once they
// serve, RELOADING=1 (with MONOTONIC_USEC) and READY=1 around a SIGHUP,
// STOPPING=1 on SIGTERM, then a clean exit.
func TestSystemdNotify(t *testing.T) {
	zones := testZones(t)
	// cacheapi asks a resolverd of its own.
	resolver := freeTCPAddr(t)
	rd := startDaemon(t, "resolverd", "-listen", resolver, "-zones", zones)
	waitFor(t, rd, "resolverd listening", func() error {
		c, err := net.DialTimeout("tcp", resolver, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	for _, name := range daemons {
		t.Run(name, func(t *testing.T) {
			sock, states := notifyListener(t)
			path := filepath.Join(t.TempDir(), "shardns.yaml")
			listen := freeAddr(t)
			writeFile(t, path, dnsdConfig(t, zones, listen, freeTCPAddr(t))+
				"resolverd:\n  listen: "+listen+"\n  workers: 0\n"+
				"cacheapi:\n  listen: "+listen+"\n  resolver: "+resolver+"\n")
			d := startNotified(t, name, sock, "-config", path)
			if s := nextState(t, d, states); s != "READY=1" {
				t.Fatalf("first state %q, want READY=1", s)
			}
			// READY=1 means serving: the listener is open already.
			conn, err := net.DialTimeout("tcp", listen, 3*time.Second)
			if err != nil {
				t.Fatalf("READY=1 sent, but %s refuses connections: %v", listen, err)
			}
			conn.Close()
			if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			if s := nextState(t, d, states); !regexp.MustCompile(`^RELOADING=1\nMONOTONIC_USEC=[0-9]+$`).MatchString(s) {
				t.Errorf("state on SIGHUP %q, want RELOADING=1 and MONOTONIC_USEC", s)
			}
			if s := nextState(t, d, states); s != "READY=1" {
				t.Errorf("state after the reload %q, want READY=1", s)
			}
			waitLog(t, d, `msg="configuration reloaded" changed=nothing`)
			if err := d.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if s := nextState(t, d, states); s != "STOPPING=1" {
				t.Errorf("state on SIGTERM %q, want STOPPING=1", s)
			}
			select {
			case <-d.Done():
				if d.Err() != nil {
					t.Errorf("exit: %v", d.Err())
				}
			case <-time.After(procs.StopWait):
				t.Errorf("%s did not exit after SIGTERM", name)
			}
		})
	}
}

// Without NOTIFY_SOCKET the daemon runs and reloads as well: the notices
// are no-ops.
func TestNoNotifySocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shardns.yaml")
	listen := freeAddr(t)
	writeFile(t, path, dnsdConfig(t, testZones(t), listen, freeTCPAddr(t)))
	d := startNotified(t, "dnsd", "", "-config", path)
	waitFor(t, d, "an answer", func() error { return answersWWW(listen) })
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, d, `msg="configuration reloaded"`)
	if strings.Contains(d.Out.String(), "notify") {
		t.Errorf("notify messages without NOTIFY_SOCKET:\n%s", d.Out.String())
	}
}

// A SIGHUP with a broken file changes nothing: dnsd keeps answering, logs
// the file, line and key of the mistake, and the reload gauge says so;
// once the file is fixed, the next SIGHUP succeeds.
func TestReloadBrokenFileKeepsServing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shardns.yaml")
	listen, metrics := freeAddr(t), freeTCPAddr(t)
	good := dnsdConfig(t, testZones(t), listen, metrics)
	writeFile(t, path, good)
	d := startNotified(t, "dnsd", "", "-config", path)
	waitFor(t, d, "an answer", func() error { return answersWWW(listen) })
	if v := metricValue(t, metrics, "shardns_config_last_reload_successful"); v != 1 {
		t.Errorf("at start: shardns_config_last_reload_successful %v, want 1", v)
	}

	// Line 8: the value -rate-limit refuses.
	writeFile(t, path, good+"  rate-limit: lots\n")
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, d, `level=ERROR msg="reload failed: the running configuration is kept" err="config: \S+shardns\.yaml:8: dnsd\.rate-limit: invalid value \\"lots\\"`)
	if err := answersWWW(listen); err != nil {
		t.Errorf("after the failed reload: %v", err)
	}
	if v := metricValue(t, metrics, "shardns_config_last_reload_successful"); v != 0 {
		t.Errorf("after a failed reload: shardns_config_last_reload_successful %v, want 0", v)
	}
	select {
	case <-d.Done():
		t.Fatalf("dnsd exited after the broken file: %v", d.Err())
	default:
	}

	writeFile(t, path, good)
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, d, `msg="configuration reloaded"`)
	if v := metricValue(t, metrics, "shardns_config_last_reload_successful"); v != 1 {
		t.Errorf("after the fixed reload: shardns_config_last_reload_successful %v, want 1", v)
	}
}

// A changed -listen needs a restart: the reload logs it with the old and
// new address and dnsd keeps serving on the old one; the log level, which
// changes live, does change.
func TestReloadListenNeedsRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shardns.yaml")
	zones := testZones(t)
	listen, other, metrics := freeAddr(t), freeAddr(t), freeTCPAddr(t)
	writeFile(t, path, dnsdConfig(t, zones, listen, metrics))
	d := startNotified(t, "dnsd", "", "-config", path)
	waitFor(t, d, "an answer", func() error { return answersWWW(listen) })

	writeFile(t, path, strings.Replace(dnsdConfig(t, zones, other, metrics), "log-level: info", "log-level: debug", 1))
	if err := d.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, d, `msg="configuration reloaded"`)
	logs := d.Out.String()
	want := fmt.Sprintf(`level=WARN msg="a changed setting needs a restart: the running value is kept" flag=listen old=%s new=%s`, listen, other)
	if !strings.Contains(logs, want) {
		t.Errorf("log lacks %s:\n%s", want, logs)
	}
	if !strings.Contains(logs, "changed.log-level.old=info changed.log-level.new=debug") {
		t.Errorf("the log level change is not reported:\n%s", logs)
	}
	if strings.Contains(logs, "flag=log-level") || strings.Contains(logs, "flag=resolv-conf") {
		t.Errorf("a live or unchanged flag reported as needing a restart:\n%s", logs)
	}
	if err := answersWWW(listen); err != nil {
		t.Errorf("the old address stopped answering: %v", err)
	}
	if err := answersWWW(other); err == nil {
		t.Errorf("dnsd answers on the new address %s without a restart", other)
	}
}

// -version prints the binary's name and build and exits 0, reading no
// config file.
func TestVersionFlag(t *testing.T) {
	for _, d := range daemons {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		out, err := exec.CommandContext(ctx, bin(d), "-version", "-config", "/nonexistent.yaml").CombinedOutput()
		cancel()
		if err != nil {
			t.Errorf("%s -version: %v\n%s", d, err, out)
			continue
		}
		if !regexp.MustCompile(`^` + d + ` \S+ revision \S+ time \S+ go1\.\S+ \S+/\S+\n$`).Match(out) {
			t.Errorf("%s -version printed %q", d, out)
		}
	}
}
