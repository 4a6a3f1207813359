package service

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/shardns/shardns/internal/resolverclient"
	"github.com/shardns/shardns/internal/testutil/dnstaptest"
	"github.com/shardns/shardns/internal/testutil/dnstest"
	"github.com/shardns/shardns/internal/testutil/procs"
)

// upstream answers every A question with 192.0.2.1 on a loopback UDP port
// until the test ends.
func upstream(t *testing.T) string {
	t.Helper()
	return dnstest.StartUDP(t, dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg).SetReply(q)
		rr, _ := dns.NewRR(q.Question[0].Name + " 300 IN A 192.0.2.1")
		m.Answer = []dns.RR{rr}
		w.WriteMsg(m)
	}))
}

// resolverd with -dnstap unix:PATH sends RESOLVER_QUERY and
// RESOLVER_RESPONSE for its queries upstream to the collector on PATH,
// ends the stream when it stops, and leaves nothing running.
func TestRunDnstapToCollector(t *testing.T) {
	up := upstream(t)
	dir, err := os.MkdirTemp("", "rtap") // short: a socket path is at most 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "c.sock")
	col := dnstaptest.NewCollector(t, sock)
	col.Start()
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	var cfg Config
	procs.Parse(t, &cfg, "-listen", "127.0.0.1:0", "-upstream", up, "-dnstap", "unix:"+sock,
		"-dnstap-identity", "resolverd.test", "-dnstap-version", "v-test", "-drain-timeout", "3s")
	addr, logs, stop := procs.RunInProcess(t, "resolverd", readyRE, func(ctx context.Context, log *slog.Logger) error {
		return Run(ctx, cfg, log)
	})
	r, err := resolverclient.Dial([]string{addr})
	if err != nil {
		t.Fatal(err)
	}
	q := new(dns.Msg).SetQuestion("tapped.example.", dns.TypeA)
	qctx, qcancel := context.WithTimeout(t.Context(), 5*time.Second)
	m, err := dnstest.Exchange(qctx, r, q)
	qcancel()
	r.Close()
	if err != nil || len(m.Answer) != 1 {
		t.Fatalf("resolve: %v %v", m, err)
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v\n%s", err, logs.String())
	}
	upAddr := net.UDPAddrFromAddrPort(netipOf(t, up))
	for _, want := range []string{"RESOLVER_QUERY", "RESOLVER_RESPONSE"} {
		f := col.Next(5 * time.Second)
		for f.Msg != nil && f.Msg.Question[0].Name == "." { // a health probe, on a slow run
			f = col.Next(5 * time.Second)
		}
		if f.Type() != want || string(f.Identity) != "resolverd.test" || string(f.Version) != "v-test" ||
			f.Msg == nil || !strings.EqualFold(f.Msg.Question[0].Name, "tapped.example.") {
			t.Fatalf("%s (identity %q, version %q, message %v), want %s of tapped.example.", f.Type(), f.Identity, f.Version, f.Msg, want)
		}
		if !net.IP(f.Message.ResponseAddress).Equal(upAddr.IP) || int(f.Message.GetResponsePort()) != upAddr.Port || f.Message.GetSocketProtocol().String() != "UDP" {
			t.Errorf("%s to %v:%d over %s, want %s over UDP", want, net.IP(f.Message.ResponseAddress), f.Message.GetResponsePort(), f.Message.GetSocketProtocol(), up)
		}
	}
}

func netipOf(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}
