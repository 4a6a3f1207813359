package forward

import (
	"strings"
	"testing"
)

func TestParseUpstream(t *testing.T) {
	good := []struct{ in, canon, server string }{
		{"127.0.0.1", "udp://127.0.0.1:53", ""},
		{"127.0.0.1:5300", "udp://127.0.0.1:5300", ""},
		{"udp://127.0.0.1:5300", "udp://127.0.0.1:5300", ""},
		{"UDP://127.0.0.1", "udp://127.0.0.1:53", ""},
		{"tcp://127.0.0.1", "tcp://127.0.0.1:53", ""},
		{"tls://127.0.0.1", "tls://127.0.0.1:853", "127.0.0.1"},
		{"tls://127.0.0.1:8853#dns.example", "tls://127.0.0.1:8853#dns.example", "dns.example"},
		{"[::1]:5300", "udp://[::1]:5300", ""},
		{"[::1]", "udp://[::1]:53", ""},
		{"::1", "udp://[::1]:53", ""},
		{"tls://[::1]#dns.example", "tls://[::1]:853#dns.example", "dns.example"},
		{"[::ffff:127.0.0.1]:53", "udp://127.0.0.1:53", ""},
	}
	for _, tc := range good {
		u, err := parseUpstream(tc.in)
		if err != nil {
			t.Errorf("parse %q: %v", tc.in, err)
			continue
		}
		if u.canon != tc.canon || u.serverName != tc.server {
			t.Errorf("parse %q = %q (server %q), want %q (server %q)", tc.in, u.canon, u.serverName, tc.canon, tc.server)
		}
	}
	bad := []struct{ in, why string }{
		{"", "empty"},
		{" 127.0.0.1", "space"},
		{"https://127.0.0.1", "unknown scheme"},
		{"udp://", "missing host"},
		{"127.0.0.1:0", "port"},
		{"127.0.0.1:65536", "port"},
		{"127.0.0.1:dns", "port"},
		{"127.0.0.1:+53", "port"},
		{"dns.example:53", "not an IP"},
		{"localhost", "not an IP"},
		{"[::1", ""},
		{"::1]:53", ""},
		{"[fe80::1%eth0]:53", "zones"},
		{"0.0.0.0:53", "cannot be an upstream"},
		{"udp://127.0.0.1#name", "only allowed for tls"},
		{"tls://127.0.0.1#", "empty server name"},
		{"tcp://127.0.0.1:53/path", "unexpected"},
		{":53", "missing host"},
	}
	for _, tc := range bad {
		_, err := parseUpstream(tc.in)
		if err == nil {
			t.Errorf("parse %q succeeded, want an error", tc.in)
			continue
		}
		prefix := "forward: bad upstream " + `"` + tc.in + `"`
		if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tc.why) {
			t.Errorf("parse %q: error %q, want prefix %q and %q", tc.in, err, prefix, tc.why)
		}
	}
}

func FuzzParseUpstream(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "udp://127.0.0.1:53", "tls://[::1]:853#dns.test", "tcp://::1", "[::1", "x://", "#"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := parseUpstream(s)
		if err != nil {
			return
		}
		// The canonical form parses to itself.
		again, err := parseUpstream(u.canon)
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", u.canon, s, err)
		}
		if again.canon != u.canon || again.serverName != u.serverName || again.addr != u.addr {
			t.Fatalf("canonical %q of %q parses to %q", u.canon, s, again.canon)
		}
	})
}
