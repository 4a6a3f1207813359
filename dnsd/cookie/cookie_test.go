package cookie

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("hex %q: %v", s, err)
	}
	return b
}

func mustSecret(t testing.TB, s string) Secret {
	t.Helper()
	sec, err := ParseSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

// at is a clock stopped at Unix time sec.
func at(sec int64) func() time.Time { return func() time.Time { return time.Unix(sec, 0) } }

func newIssuer(t testing.TB, now func() time.Time, secrets ...string) *Issuer {
	t.Helper()
	var ss []Secret
	for _, s := range secrets {
		ss = append(ss, mustSecret(t, s))
	}
	c, err := New(Config{Secrets: ss, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The examples of RFC 9018 Appendix A, each a query's COOKIE option, the
// verdict on it and the option of the reply, byte for byte.
func TestRFC9018Examples(t *testing.T) {
	const (
		secret1 = "e5e973e5a6b2a43f48e7dc849e37bfcf"
		oldA4   = "dd3bdf9344b678b185a6f5cb60fca715"
		newA4   = "445536bcd2513298075a5d379663c962"
	)
	for _, tc := range []struct {
		name    string
		secrets []string
		client  string
		now     int64
		query   string
		verdict Verdict
		reply   string
	}{
		{
			name: "A.1 learning a new server cookie", secrets: []string{secret1},
			client: "198.51.100.100", now: 1559731985,
			query: "2464c4abcf10c957", verdict: ClientOnly,
			reply: "2464c4abcf10c957010000005cf79f111f8130c3eee29480",
		},
		{
			name: "A.2 the same client, 40 minutes later: renewed", secrets: []string{secret1},
			client: "198.51.100.100", now: 1559734385,
			query: "2464c4abcf10c957010000005cf79f111f8130c3eee29480", verdict: Renew,
			reply: "2464c4abcf10c957010000005cf7a871d4a564a1442aca77",
		},
		{
			// The example's cookie is 1h52m old, past the hour this
			// server keeps to (§4.3): it verifies, and is refused as
			// expired, the reserved octets the client set being part of
			// the hash.
			name: "A.3 another client, reserved octets set", secrets: []string{secret1},
			client: "203.0.113.203", now: 1559734700,
			query: "fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5", verdict: Expired,
			reply: "fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e",
		},
		{
			name: "A.4 IPv6, the secret rolled over: the old one still verifies", secrets: []string{newA4, oldA4},
			client: "2001:db8:220:1:59de:d0f4:8769:82b8", now: 1559741961,
			query: "22681ab97d52c298010000005cf7c57926556bd0934c72f8", verdict: Renew,
			reply: "22681ab97d52c298010000005cf7c609a6bb79d16625507a",
		},
		{
			name: "A.4 without the old secret the cookie is not ours", secrets: []string{newA4},
			client: "2001:db8:220:1:59de:d0f4:8769:82b8", now: 1559741961,
			query: "22681ab97d52c298010000005cf7c57926556bd0934c72f8", verdict: Invalid,
			reply: "22681ab97d52c298010000005cf7c609a6bb79d16625507a",
		},
		{
			name: "A.1's cookie from another address is not ours", secrets: []string{secret1},
			client: "198.51.100.101", now: 1559731985,
			query: "2464c4abcf10c957010000005cf79f111f8130c3eee29480", verdict: Invalid,
		},
		{
			name: "A.1's cookie from the IPv4-mapped address is the same client", secrets: []string{secret1},
			client: "::ffff:198.51.100.100", now: 1559731985 + 10,
			query: "2464c4abcf10c957010000005cf79f111f8130c3eee29480", verdict: Valid,
			reply: "2464c4abcf10c957010000005cf79f111f8130c3eee29480",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newIssuer(t, at(tc.now), tc.secrets...)
			addr := netip.MustParseAddr(tc.client)
			opt := mustHex(t, tc.query)
			v := c.Check(opt, addr)
			if v != tc.verdict {
				t.Errorf("Check = %v, want %v", v, tc.verdict)
			}
			if tc.reply == "" {
				return
			}
			if got := hex.EncodeToString(c.AppendReply(nil, opt, v, addr)); got != tc.reply {
				t.Errorf("reply cookie %s, want %s", got, tc.reply)
			}
		})
	}
}

// The lifetime of RFC 9018 §4.3 at its edges, across the wrap of the
// 32-bit timestamp too.
func TestLifetime(t *testing.T) {
	const base = 1559731985
	addr := netip.MustParseAddr("192.0.2.7")
	client := mustHex(t, "0102030405060708")
	for _, tc := range []struct {
		name    string
		made    int64 // when the cookie was made
		now     int64
		verdict Verdict
	}{
		{"this second", base, base, Valid},
		{"half an hour old", base, base + 1800, Valid},
		{"half an hour and a second old", base, base + 1801, Renew},
		{"an hour old", base, base + 3600, Renew},
		{"an hour and a second old", base, base + 3601, Expired},
		{"a day old", base, base + 86400, Expired},
		{"five minutes ahead", base + 300, base, Valid},
		{"five minutes and a second ahead", base + 301, base, Future},
		{"a day ahead", base + 86400, base, Future},
		{"an hour old across the wrap", 1<<32 - 1000, 1<<32 + 2599, Renew},
		{"ten minutes old across the wrap", 1<<32 - 300, 1<<32 + 300, Valid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			maker := newIssuer(t, at(tc.made), "00112233445566778899aabbccddeeff")
			opt := maker.AppendReply(nil, client, ClientOnly, addr)
			checker := newIssuer(t, at(tc.now), "00112233445566778899aabbccddeeff")
			if v := checker.Check(opt, addr); v != tc.verdict {
				t.Errorf("Check = %v, want %v", v, tc.verdict)
			}
		})
	}
}

// Every change to a valid cookie makes it invalid, and so do another
// length and another version.
func TestTamperedIsInvalid(t *testing.T) {
	c := newIssuer(t, at(1559731985), "00112233445566778899aabbccddeeff")
	addr := netip.MustParseAddr("2001:db8::53")
	good := c.AppendReply(nil, mustHex(t, "a1a2a3a4a5a6a7a8"), ClientOnly, addr)
	if v := c.Check(good, addr); v != Valid {
		t.Fatalf("our own cookie: %v", v)
	}
	for i := range good {
		bad := bytes.Clone(good)
		bad[i] ^= 0x10
		// The client cookie, version, reserved octets, timestamp and
		// hash: none can change without the hash noticing.
		if v := c.Check(bad, addr); v != Invalid {
			t.Errorf("octet %d flipped: %v, want invalid", i, v)
		}
	}
	if v := c.Check(append(bytes.Clone(good), 0), addr); v != Invalid {
		t.Errorf("a 17-octet server cookie: %v, want invalid", v)
	}
	if v := c.Check(good[:ClientLen+8], addr); v != Invalid {
		t.Errorf("an 8-octet server cookie: %v, want invalid", v)
	}
	other := newIssuer(t, at(1559731985), "ffeeddccbbaa99887766554433221100")
	if v := other.Check(good, addr); v != Invalid {
		t.Errorf("under another secret: %v, want invalid", v)
	}
}

// RFC 7873 §5.2.2: a COOKIE option is 8 octets, or 16 to 40.
func TestSplitLengths(t *testing.T) {
	for n := range 50 {
		client, server, ok := Split(make([]byte, n))
		want := n == 8 || (16 <= n && n <= 40)
		if ok != want {
			t.Errorf("%d octets: ok %v, want %v", n, ok, want)
			continue
		}
		if ok && (len(client) != ClientLen || len(server) != n-ClientLen) {
			t.Errorf("%d octets: split %d + %d", n, len(client), len(server))
		}
		c := newIssuer(t, at(1), "00112233445566778899aabbccddeeff")
		if v := c.Check(make([]byte, n), netip.MustParseAddr("192.0.2.1")); (v == Malformed) == want {
			t.Errorf("%d octets: verdict %v", n, v)
		}
	}
}

// AppendReply never makes anything but a client cookie and a server
// cookie of ours, and adds nothing for a malformed option.
func TestAppendReply(t *testing.T) {
	c := newIssuer(t, at(1559731985), "00112233445566778899aabbccddeeff")
	addr := netip.MustParseAddr("192.0.2.1")
	if got := c.AppendReply([]byte{1, 2}, make([]byte, 9), Malformed, addr); !bytes.Equal(got, []byte{1, 2}) {
		t.Errorf("malformed: %x", got)
	}
	opt := mustHex(t, "a1a2a3a4a5a6a7a8")
	got := c.AppendReply([]byte{9}, opt, ClientOnly, addr)
	if len(got) != 1+ReplyLen || !bytes.Equal(got[1:9], opt) {
		t.Fatalf("reply %x", got)
	}
	if v := c.Check(got[1:], addr); v != Valid {
		t.Errorf("our reply cookie checks %v", v)
	}
}

func TestAllocations(t *testing.T) {
	c := newIssuer(t, at(1559731985), "00112233445566778899aabbccddeeff")
	addr := netip.MustParseAddr("2001:db8::1")
	opt := c.AppendReply(nil, mustHex(t, "a1a2a3a4a5a6a7a8"), ClientOnly, addr)
	dst := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() {
		v := c.Check(opt, addr)
		dst = c.AppendReply(dst[:0], opt, v, addr)
		dst = c.AppendReply(dst[:0], opt, ClientOnly, addr)
	}); n != 0 {
		t.Errorf("%v allocations per check and reply", n)
	}
}

func TestParseSecret(t *testing.T) {
	if _, err := ParseSecret("e5e973e5a6b2a43f48e7dc849e37bfcf"); err != nil {
		t.Errorf("good secret: %v", err)
	}
	for _, s := range []string{
		"", "e5e973e5a6b2a43f48e7dc849e37bfc", "e5e973e5a6b2a43f48e7dc849e37bfcf00",
		"g5e973e5a6b2a43f48e7dc849e37bfcf", "00000000000000000000000000000000",
	} {
		if _, err := ParseSecret(s); err == nil {
			t.Errorf("ParseSecret(%q) accepted", s)
		}
	}
}

func TestReadSecrets(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	got, err := ReadSecrets(write("two", "# rolled 2026-12-06\n445536bcd2513298075a5d379663c962\n\n  dd3bdf9344b678b185a6f5cb60fca715  \n"))
	if err != nil || len(got) != 2 || got[0] != mustSecret(t, "445536bcd2513298075a5d379663c962") {
		t.Errorf("two secrets: %x, %v", got, err)
	}
	for name, text := range map[string]string{
		"empty": "# nothing\n\n",
		"three": strings.Repeat("445536bcd2513298075a5d379663c962\n", 3),
		"short": "445536bcd2513298\n",
	} {
		if _, err := ReadSecrets(write(name, text)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ReadSecrets(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file: accepted")
	}
	a, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSecret()
	if a == b || a == (Secret{}) {
		t.Errorf("random secrets %x and %x", a, b)
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New without a secret: no error")
	}
}

// FuzzCheck hands any option data to Check and AppendReply: no panic, a
// malformed verdict exactly for the lengths RFC 7873 refuses, a reply
// cookie that is ours and verifies whenever there is one, and Split's
// parts adding up to the option.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"", "2464c4abcf10c957", "2464c4abcf10c95700",
		"2464c4abcf10c957010000005cf79f111f8130c3eee29480",
		"fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5",
		"2464c4abcf10c957" + strings.Repeat("ab", 32),
		"2464c4abcf10c957" + strings.Repeat("ab", 33),
		"2464c4abcf10c957" + strings.Repeat("ab", 8),
		"2464c4abcf10c957020000005cf79f111f8130c3eee29480",
	} {
		f.Add(mustHex(f, s), true)
		f.Add(mustHex(f, s), false)
	}
	c := newIssuer(f, at(1559731985), "e5e973e5a6b2a43f48e7dc849e37bfcf")
	f.Fuzz(func(t *testing.T, opt []byte, v6 bool) {
		addr := netip.MustParseAddr("198.51.100.100")
		if v6 {
			addr = netip.MustParseAddr("2001:db8::100")
		}
		client, server, ok := Split(opt)
		if ok && len(client)+len(server) != len(opt) {
			t.Fatalf("split %d into %d + %d", len(opt), len(client), len(server))
		}
		v := c.Check(opt, addr)
		if (v == Malformed) != !ok {
			t.Fatalf("%d octets: verdict %v, split ok %v", len(opt), v, ok)
		}
		reply := c.AppendReply(nil, opt, v, addr)
		if v == Malformed {
			if len(reply) != 0 {
				t.Fatalf("a reply cookie for a malformed option: %x", reply)
			}
			return
		}
		if len(reply) != ReplyLen || !bytes.Equal(reply[:ClientLen], opt[:ClientLen]) {
			t.Fatalf("reply %x to %x", reply, opt)
		}
		if rv := c.Check(reply, addr); rv != Valid {
			t.Fatalf("reply cookie %x checks %v", reply, rv)
		}
	})
}
