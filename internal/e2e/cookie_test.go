package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/dnsd/cookie"
)

// cookieSecret is the fleet's server cookie secret in these tests.
const cookieSecret = "e5e973e5a6b2a43f48e7dc849e37bfcf"

// writeSecret writes a -cookie-secret-file holding secret, mode 0600.
func writeSecret(t *testing.T, secret string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "cookie-secret")
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	digCookieRE  = regexp.MustCompile(`(?m)^; COOKIE: ([0-9a-f]+)( \(good\))?`)
	kdigCookieRE = regexp.MustCompile(`(?m)^;; COOKIE: ([0-9A-Fa-f]+)`)
)

// digCookie is the COOKIE dig printed, which it must have found good
// (carrying the client cookie it sent).
func digCookie(t *testing.T, r digResult) string {
	t.Helper()
	m := digCookieRE.FindStringSubmatch(r.Raw)
	if m == nil || m[2] == "" {
		t.Fatalf("no good COOKIE in dig's output:\n%s", r.Raw)
	}
	return m[1]
}

// kdig runs kdig against addr and returns its output.
func kdig(t *testing.T, addr string, opts ...string) string {
	t.Helper()
	bin := needTool(t, "kdig", "knot-dnsutils")
	host, p, _ := net.SplitHostPort(addr)
	args := append([]string{"@" + host, "-p", p, "+retry=0", "+timeout=5"}, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("kdig %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// checkOurs fails unless full (hex) is the client cookie client followed
// by a server cookie the fleet's secret made for 127.0.0.1 just now.
func checkOurs(t *testing.T, full, client, what string) {
	t.Helper()
	b, err := hex.DecodeString(full)
	if err != nil || len(b) != cookie.ReplyLen || !strings.HasPrefix(strings.ToLower(full), client) {
		t.Fatalf("%s: COOKIE %s, want client cookie %s and a 16-octet server cookie", what, full, client)
	}
	sec, err := cookie.ParseSecret(cookieSecret)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := cookie.New(cookie.Config{Secrets: []cookie.Secret{sec}})
	if err != nil {
		t.Fatal(err)
	}
	if v := iss.Check(b, netip.MustParseAddr("127.0.0.1")); v != cookie.Valid {
		t.Errorf("%s: the server cookie in %s checks %v under the fleet's secret", what, full, v)
	}
}

// TestServerCookiesWithDigAndKdig drives dnsd's server cookies (RFC 7873,
// RFC 9018) with the real clients: dig and kdig get a server cookie made
// with the secret of -cookie-secret-file, a second query carrying it is
// accepted and gets it back, another frontend with the same file accepts
// it too, and one with another secret answers BADCOOKIE over UDP (dig
// +badcookie then retries with the new cookie and is answered) and
// answers over TCP. A malformed COOKIE gets FORMERR. Last, a burst from a
// client holding a valid cookie passes the rate limit, while the same
// burst without it is limited.
func TestServerCookiesWithDigAndKdig(t *testing.T) {
	secret := writeSecret(t, cookieSecret)
	d, addr, metrics := startAllInOne(t, "-cookie-secret-file", secret, "-rate-limit", "20")
	_, fleetAddr, _ := startAllInOne(t, "-cookie-secret-file", secret)
	_, otherAddr, _ := startAllInOne(t) // a secret of its own
	const client = "2464c4abcf10c957"

	r := dig(t, addr, "www.shardns.test", "A", "+cookie="+client)
	full := digCookie(t, r)
	checkOurs(t, full, client, "dig, client cookie alone")
	if r.Status != "NOERROR" || len(r.Answer) != 1 {
		t.Fatalf("dig +cookie: %s %v", r.Status, r.Answer)
	}
	r = dig(t, addr, "www.shardns.test", "A", "+cookie="+full)
	if got := digCookie(t, r); r.Status != "NOERROR" || len(r.Answer) != 1 || got != full {
		t.Errorf("dig +cookie=<the full cookie>: %s %v, COOKIE %s; want an answer and %s echoed", r.Status, r.Answer, got, full)
	}
	if n := metric(t, metrics, `shardns_dns_cookies_total{result="valid"}`); n != 1 {
		t.Errorf("valid cookies counted: %v, want 1", n)
	}
	r = dig(t, fleetAddr, "www.shardns.test", "A", "+cookie="+full, "+nobadcookie")
	if got := digCookie(t, r); r.Status != "NOERROR" || got != full {
		t.Errorf("another frontend with the same secret: %s, COOKIE %s; want NOERROR and %s echoed", r.Status, got, full)
	}

	r = dig(t, otherAddr, "www.shardns.test", "A", "+cookie="+full, "+nobadcookie")
	if got := digCookie(t, r); r.Status != "BADCOOKIE" || len(r.Answer) != 0 || got == full || !strings.HasPrefix(got, client) {
		t.Errorf("a frontend with another secret, UDP: %s %v, COOKIE %s; want BADCOOKIE with a new server cookie", r.Status, r.Answer, got)
	}
	r = dig(t, otherAddr, "www.shardns.test", "A", "+cookie="+full, "+badcookie")
	if r.Status != "NOERROR" || len(r.Answer) != 1 {
		t.Errorf("dig +badcookie, retrying with the new cookie: %s %v", r.Status, r.Answer)
	}
	r = dig(t, otherAddr, "www.shardns.test", "A", "+cookie="+full, "+tcp")
	if got := digCookie(t, r); r.Status != "NOERROR" || len(r.Answer) != 1 || got == full {
		t.Errorf("a frontend with another secret, TCP: %s %v, COOKIE %s; want an answer with a new cookie", r.Status, r.Answer, got)
	}
	r = dig(t, addr, "www.shardns.test", "A", "+cookie=0102030405060708090a0b")
	if r.Status != "FORMERR" {
		t.Errorf("an 11-octet COOKIE: %s, want FORMERR", r.Status)
	}

	out := kdig(t, addr, "+cookie", "www.shardns.test", "A")
	m := kdigCookieRE.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "status: NOERROR") {
		t.Fatalf("kdig +cookie: no COOKIE or no answer:\n%s", out)
	}
	kfull := strings.ToLower(m[1])
	checkOurs(t, kfull, kfull[:16], "kdig +cookie")
	out = kdig(t, addr, "+cookie="+kfull, "www.shardns.test", "A")
	if m := kdigCookieRE.FindStringSubmatch(out); m == nil || strings.ToLower(m[1]) != kfull || !strings.Contains(out, "status: NOERROR") {
		t.Errorf("kdig +cookie=<its full cookie>: want NOERROR and %s echoed:\n%s", kfull, out)
	}

	// 200 UDP queries in half a second against 20 a second: with the
	// valid cookie every one is answered; without it most are not.
	valid, err := hex.DecodeString(full)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	answered, truncated := cookieBurst(t, addr, n, 500*time.Millisecond, valid)
	if answered != n || truncated != 0 {
		t.Errorf("with a valid cookie: %d of %d answered, %d truncated; want all answered", answered, n, truncated)
	}
	answered, truncated = cookieBurst(t, addr, n, 500*time.Millisecond, nil)
	if answered > n/4 || truncated == 0 {
		t.Errorf("without a cookie: %d of %d answered, %d truncated; want the limit applied", answered, n, truncated)
	}
	alive(t, d)
}

// cookieBurst sends n queries from one UDP socket, spaced evenly over
// span, each carrying the COOKIE data (none when nil), and counts the full
// answers and empty truncated replies that come back within a second of
// the last. Full answers must carry data back.
func cookieBurst(t *testing.T, addr string, n int, span time.Duration, data []byte) (answered, truncated int) {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q := new(dns.Msg)
	q.SetQuestion("www.shardns.test.", dns.TypeA)
	q.SetEdns0(1232, false)
	if data != nil {
		opt := q.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: hex.EncodeToString(data)})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1232)
		_ = conn.SetReadDeadline(time.Now().Add(span + time.Second))
		for range n {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			m := new(dns.Msg)
			if m.Unpack(buf[:k]) != nil {
				continue
			}
			switch {
			case m.Truncated && len(m.Answer) == 0:
				truncated++
			case m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0:
				if data != nil && !bytes.Contains(buf[:k], data) {
					t.Errorf("an answer without the client's cookie")
				}
				answered++
			}
		}
	}()
	gap := span / time.Duration(n)
	for i := range n {
		q.Id = uint16(i + 1)
		wire, err := q.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write(wire); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		time.Sleep(gap)
	}
	<-done
	return answered, truncated
}
