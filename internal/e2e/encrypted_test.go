package e2e

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/quic-go/quic-go"

	"github.com/shardns/shardns/internal/testutil/testcerts"
)

// The dnsd binary serves DoT, DoH and DoQ: dig, kdig and a Go DoQ client
// get the answers dig gets over UDP, and SIGTERM stops it cleanly.
func TestDnsdEncryptedListeners(t *testing.T) {
	zones := t.TempDir()
	zone := "$TTL 300\n@ IN SOA ns1.enc.test. h.enc.test. 1 7200 900 1209600 60\n  IN NS ns1.enc.test.\n" +
		"ns1 IN A 127.0.0.53\nwww IN A 192.0.2.7\nwww IN A 192.0.2.8\nmail IN MX 10 mx.enc.test.\n"
	if err := os.WriteFile(filepath.Join(zones, "enc.test.zone"), []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	ca := testcerts.NewCA(t, "e2e DoT CA")
	pair := ca.Server(t, "dnsd", "127.0.0.1")
	listen, dot, doh, doq := port(t), port(t), port(t), port(t)
	d := start(t, "dnsd", nil, "-listen", listen, "-upstream", "127.0.0.1:1", "-zones", zones,
		"-dot", dot, "-doh", doh, "-doq", doq, "-tls-cert", pair.Cert, "-tls-key", pair.Key)
	waitTCP(t, d, listen)
	waitTCP(t, d, dot)
	waitTCP(t, d, doh)

	qc := func() *quic.Conn {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := quic.DialAddr(ctx, doq, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", NextProtos: []string{"doq"}}, nil)
		if err != nil {
			t.Fatalf("doq dial: %v", err)
		}
		return c
	}()
	defer qc.CloseWithError(0, "")

	key := func(status string, rrs []dns.RR) string {
		var out []string
		for _, rr := range rrs {
			rr.Header().Ttl = 0
			out = append(out, rr.String())
		}
		slices.Sort(out)
		return status + " " + strings.Join(out, " | ")
	}
	for _, q := range []struct{ name, qtype string }{{"www.enc.test.", "A"}, {"mail.enc.test.", "MX"}, {"nx.enc.test.", "A"}} {
		udp := dig(t, listen, q.name, q.qtype)
		want := key(udp.Status, udp.Answer)
		for name, r := range map[string]digResult{
			"dig +tls":    dig(t, dot, q.name, q.qtype, "+tls", "+tls-ca="+ca.File, "+tls-hostname=127.0.0.1"),
			"dig +https":  dig(t, doh, q.name, q.qtype, "+https", "+tls-ca="+ca.File, "+tls-hostname=127.0.0.1"),
			"kdig +tls":   parseDig(t, kdig(t, dot, q.name, q.qtype, "+tls", "+tls-ca="+ca.File, "+tls-hostname=127.0.0.1")),
			"kdig +https": parseDig(t, kdig(t, doh, q.name, q.qtype, "+https", "+tls-ca="+ca.File, "+tls-hostname=127.0.0.1")),
		} {
			if got := key(r.Status, r.Answer); got != want {
				t.Errorf("%s %s %s: %s; over UDP: %s", name, q.name, q.qtype, got, want)
			}
		}
		m := new(dns.Msg)
		m.SetQuestion(q.name, dns.StringToType[q.qtype])
		m.Id = 0
		r := doqAsk(t, qc, m)
		if got := key(dns.RcodeToString[r.Rcode], r.Answer); got != want {
			t.Errorf("doq %s %s: %s; over UDP: %s", q.name, q.qtype, got, want)
		}
	}
	d.Stop(t)
	if err := d.Err(); err != nil {
		t.Errorf("dnsd after SIGTERM: %v\n%s", err, d.Out.String())
	}
}

// doqAsk sends m on a stream of its own (RFC 9250) and reads the reply.
func doqAsk(t *testing.T, c *quic.Conn, m *dns.Msg) *dns.Msg {
	t.Helper()
	wire, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := c.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(10 * time.Second))
	st.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(wire))), wire...))
	st.Close()
	b, err := io.ReadAll(st)
	if err != nil || len(b) < 2 || int(binary.BigEndian.Uint16(b)) != len(b)-2 {
		t.Fatalf("doq reply %x: %v", b, err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(b[2:]); err != nil {
		t.Fatal(err)
	}
	return r
}
