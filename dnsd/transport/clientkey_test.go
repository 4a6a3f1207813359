package transport

import (
	"net/netip"
	"testing"
)

// MaxTCPPerClient counts an IPv4 client by its address (mapped or not)
// and an IPv6 client by its /64, whatever its zone.
func TestClientKey(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"192.0.2.1", "192.0.2.1", true},
		{"192.0.2.1", "::ffff:192.0.2.1", true},
		{"192.0.2.1", "192.0.2.2", false},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", false},
		{"fe80::1%eth0", "fe80::2", true},
		{"::1", "::1", true},
		{"::ffff:192.0.2.1", "::ffff:192.0.3.1", false},
	} {
		ka, kb := clientKey(netip.MustParseAddr(tc.a)), clientKey(netip.MustParseAddr(tc.b))
		if (ka == kb) != tc.same {
			t.Errorf("clientKey(%s) = %v, clientKey(%s) = %v; same: %v, want %v", tc.a, ka, tc.b, kb, ka == kb, tc.same)
		}
	}
}
