package transport

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// A peer read from a sockaddr is written back as the same sockaddr: the
// reply goes where the query came from, zone included, with no lookup of
// the interface per datagram.
func TestSockaddrRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		family int
		peer   string
	}{
		{unix.AF_INET, "192.0.2.7:53000"},
		{unix.AF_INET6, "[2001:db8::7]:1"},
		{unix.AF_INET6, "[::ffff:192.0.2.7]:65535"}, // an IPv4 client of a dual-stack socket
		{unix.AF_INET6, "[fe80::7%3]:5353"},         // link-local, on interface 3
	} {
		peer := netip.MustParseAddrPort(tc.peer)
		s := &sendSocket{family: tc.family}
		var raw unix.RawSockaddrInet6
		if _, err := s.putAddr(&raw, peer); err != nil {
			t.Fatalf("%v: %v", peer, err)
		}
		if got := peerOf(&raw); got != peer {
			t.Errorf("%v written and read back as %v", peer, got)
		}
	}
	var raw unix.RawSockaddrInet6
	if _, err := (&sendSocket{family: unix.AF_INET}).putAddr(&raw, netip.MustParseAddrPort("[2001:db8::7]:53")); err == nil {
		t.Error("an IPv6 peer put into an IPv4 sockaddr")
	}
}
