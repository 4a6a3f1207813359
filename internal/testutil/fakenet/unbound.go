package fakenet

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Unbound is a running unbound, the reference validating resolver, using
// the fake Internet's root hints and trust anchor.
type Unbound struct {
	Addr string // host:port, UDP and TCP
	Dir  string // its configuration and log (unbound.log)
	cmd  *exec.Cmd
	done chan struct{}
}

// UnboundConfig is the unbound.conf StartUnbound writes: validator and
// iterator, the net's root hints and trust anchor, listening on addr:53,
// in the foreground without chroot, remote control or privilege drop,
// logging to dir/unbound.log, with Extended DNS Errors on, and answering
// however long the resolution took (discard-timeout 0: by default unbound
// drops the reply to a query older than 1.9 s, and the row whose first
// server never answers takes longer when unbound asks that one first).
// extra lines are appended to the server: clause.
func (n *Net) UnboundConfig(addr, dir string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `server:
  module-config: "validator iterator"
  root-hints: %q
  trust-anchor-file: %q
  interface: %s
  port: 53
  do-ip6: no
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  username: ""
  chroot: ""
  directory: %q
  pidfile: %q
  use-syslog: no
  logfile: %q
  verbosity: 1
  val-log-level: 2
  ede: yes
  num-threads: 1
  so-reuseport: no
  outgoing-range: 64
  discard-timeout: 0
`, n.RootHints, n.TrustAnchor, addr, dir, filepath.Join(dir, "unbound.pid"), filepath.Join(dir, "unbound.log"))
	for _, line := range extra {
		fmt.Fprintf(&b, "  %s\n", line)
	}
	b.WriteString("remote-control:\n  control-enable: no\n")
	return b.String()
}

// StartUnbound runs unbound (UnboundConfig with extra) on a Spare address
// until the test ends.
func (n *Net) StartUnbound(t TB, extra ...string) *Unbound {
	t.Helper()
	bin, err := lookPath("unbound")
	if err != nil {
		missing(t, "unbound not found (apt-get install unbound)")
	}
	addr := n.Spare(t).String()
	dir, err := os.MkdirTemp(n.Dir, "unbound-")
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "unbound.conf")
	if err := os.WriteFile(conf, []byte(n.UnboundConfig(addr, dir, extra...)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-d", "-c", conf)
	cmd.SysProcAttr = sysProcAttr()
	out, err := os.Create(filepath.Join(dir, "unbound.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("fakenet: start unbound: %v", err)
	}
	u := &Unbound{Addr: hostPort(addr), Dir: dir, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(u.done) }()
	t.Cleanup(u.stop)
	if err := u.waitReady(10 * time.Second); err != nil {
		t.Fatalf("fakenet: unbound on %s: %v\n%s", u.Addr, err, u.Log())
	}
	return u
}

// Log is unbound's log and output so far, for a failing test to print.
func (u *Unbound) Log() string {
	log, _ := os.ReadFile(filepath.Join(u.Dir, "unbound.log"))
	out, _ := os.ReadFile(filepath.Join(u.Dir, "unbound.out"))
	return string(log) + string(out)
}

// waitReady polls unbound with a question it answers itself (localhost.,
// one of its default local zones) until it answers.
func (u *Unbound) waitReady(limit time.Duration) error {
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	q := new(dns.Msg)
	q.SetQuestion("localhost.", dns.TypeA)
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-u.done:
			return fmt.Errorf("unbound exited")
		default:
		}
		if r, _, err := c.Exchange(q, u.Addr); err == nil && r.Rcode == dns.RcodeSuccess {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no answer within %v", limit)
}

// stop ends unbound (SIGTERM, then SIGKILL after 5 s) and waits for it.
func (u *Unbound) stop() {
	_ = u.cmd.Process.Signal(os.Interrupt)
	select {
	case <-u.done:
	case <-time.After(5 * time.Second):
		_ = u.cmd.Process.Kill()
		<-u.done
	}
}
