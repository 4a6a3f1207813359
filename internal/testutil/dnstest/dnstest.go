// Package dnstest starts in-process DNS servers (miekg/dns) on loopback for
// tests.
package dnstest

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// StartUDP serves h over UDP on a free port of 127.0.0.1 and returns its
// address once it answers. The server is shut down when the test ends.
func StartUDP(t testing.TB, h dns.Handler) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: func() { close(started) }}
	errc := make(chan error, 1)
	go func() { errc <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-errc:
		t.Fatalf("dnstest: server did not start: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("dnstest: server did not start in 5s")
	}
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-errc
	})
	return pc.LocalAddr().String()
}

// ExampleZones is a folder of zone files holding one zone, example.test.,
// whose www.example.test. has the address 192.0.2.9.
func ExampleZones(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	zone := "$TTL 300\n" +
		"@ IN SOA ns1.example.test. hostmaster.example.test. 1 7200 900 1209600 60\n" +
		"  IN NS ns1.example.test.\n" +
		"ns1 IN A 127.0.0.53\n" +
		"www IN A 192.0.2.9\n"
	if err := os.WriteFile(filepath.Join(dir, "example.test.zone"), []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
