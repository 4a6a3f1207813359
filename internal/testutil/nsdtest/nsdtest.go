// Package nsdtest runs Debian's nsd, a real authoritative DNS server, on a
// loopback port for tests, serving zone files the test writes.
package nsdtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/nsdconf"
	"github.com/shardns/shardns/internal/testutil/freeport"
)

// Server is one nsd process on 127.0.0.1.
type Server struct {
	Addr string // host:port, UDP and TCP
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs nsd serving zones (origin → zone file text) on a free
// loopback port, waits until it answers the first zone's SOA, and stops it
// when the test ends. Without nsd the test is skipped, or fails when CI is
// set.
func Start(t testing.TB, zones map[string]string) *Server {
	t.Helper()
	bin, err := exec.LookPath("nsd")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nsd", "/usr/local/sbin/nsd"} {
			if _, e := os.Stat(p); e == nil {
				bin, err = p, nil
			}
		}
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("nsdtest: nsd not found (apt-get install nsd)")
		}
		t.Skip("nsdtest: nsd not found: apt-get install nsd")
	}
	dir := t.TempDir()
	port := freePort(t)
	var zs []nsdconf.Zone
	first := ""
	for origin, text := range zones {
		origin = dns.Fqdn(origin)
		if first == "" {
			first = origin
		}
		file := strings.TrimSuffix(origin, ".") + ".zone"
		if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		zs = append(zs, nsdconf.Zone{Name: origin, File: file})
	}
	confPath := filepath.Join(dir, "nsd.conf")
	if err := os.WriteFile(confPath, []byte(nsdconf.Config(port, dir, zs...)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-d", "-c", confPath)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("nsdtest: start nsd: %v", err)
	}
	s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(s.done) }()
	t.Cleanup(s.stop)
	if err := s.waitReady(first, 10*time.Second); err != nil {
		log, _ := os.ReadFile(nsdconf.LogPath(dir))
		t.Fatalf("nsdtest: %v\nnsd log:\n%s", err, log)
	}
	return s
}

func (s *Server) waitReady(zone string, limit time.Duration) error {
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	q := new(dns.Msg)
	q.SetQuestion(zone, dns.TypeSOA)
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return fmt.Errorf("nsd exited")
		default:
		}
		if r, _, err := c.Exchange(q, s.Addr); err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nsd did not answer %s SOA within %v", zone, limit)
}

func (s *Server) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	p, err := freeport.UDPTCP()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
