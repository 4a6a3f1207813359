package forward

import (
	"testing"
	"time"

	"github.com/miekg/dns"
)

// An empty datagram from the upstream is one more datagram that is not the
// reply: it is counted and ignored, and the reply after it is taken.
func TestEmptyDatagramIgnored(t *testing.T) {
	addr, stop := startUDP(t, "127.0.0.1:0", dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		_, _ = w.Write(nil)
		_, _ = w.Write([]byte{})
		_ = w.WriteMsg(reply(r, "192.0.2.1"))
	}))
	defer stop()
	f := newForwarder(t, Config{Upstreams: []string{"udp://" + addr}, HealthInterval: -1})
	resp, _, err := f.Exchange(ctxFor(t, 5*time.Second), query("e.example.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if got := firstA(resp); got != "192.0.2.1" {
		t.Errorf("took A %s, want 192.0.2.1", got)
	}
	if st := f.Upstreams()[0]; st.Ignored == 0 || st.Failures != 0 {
		t.Errorf("status %+v: want the empty datagrams ignored, no failure", st)
	}
}

// The per-query socket reaches an IPv6 upstream too.
func TestUDPOverIPv6(t *testing.T) {
	addr, stop := startUDP(t, "[::1]:0", dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		_ = w.WriteMsg(reply(r, "192.0.2.6"))
	}))
	defer stop()
	f := newForwarder(t, Config{Upstreams: []string{"udp://" + addr}, HealthInterval: -1})
	resp, _, err := f.Exchange(ctxFor(t, 5*time.Second), query("six.example.", dns.TypeA))
	if err != nil {
		t.Fatal(err)
	}
	if got := firstA(resp); got != "192.0.2.6" {
		t.Errorf("took A %s, want 192.0.2.6", got)
	}
}
