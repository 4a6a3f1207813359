package acl

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func benchAllowed(b *testing.B, a *ACL, addrs []netip.Addr) {
	b.ReportAllocs()
	n := 0
	for i := 0; b.Loop(); i++ {
		if a.Allowed(addrs[i%len(addrs)]) {
			n++
		}
	}
	_ = n
}

var benchAddrs = []netip.Addr{
	netip.MustParseAddr("127.0.0.1"),
	netip.MustParseAddr("8.8.8.8"),
	netip.MustParseAddr("::ffff:192.168.1.1"),
	netip.MustParseAddr("2001:4860::8888"),
	netip.MustParseAddr("fd00::1"),
}

func BenchmarkAllowedDefault(b *testing.B) {
	benchAllowed(b, mustParse(b, ""), benchAddrs)
}

func BenchmarkAllowedDefaultV4(b *testing.B) {
	benchAllowed(b, mustParse(b, ""), benchAddrs[1:2])
}

func BenchmarkAllowedDefaultV6(b *testing.B) {
	benchAllowed(b, mustParse(b, ""), benchAddrs[3:4])
}

// BenchmarkAllowed1000 uses an ACL of 500 IPv4 and 500 IPv6 prefixes.
func BenchmarkAllowed1000(b *testing.B) {
	var list []string
	for i := range 500 {
		list = append(list, fmt.Sprintf("10.%d.%d.0/24", i/256, i%256))
		list = append(list, fmt.Sprintf("2001:db8:%x::/48", i*2))
	}
	benchAllowed(b, mustParse(b, strings.Join(list, ",")), append(benchAddrs,
		netip.MustParseAddr("10.1.200.7"), netip.MustParseAddr("2001:db8:1f0::1")))
}

func BenchmarkAllowedParallel(b *testing.B) {
	a := mustParse(b, "")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			a.Allowed(benchAddrs[i%len(benchAddrs)])
			i++
		}
	})
}

func BenchmarkParseDefault(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(""); err != nil {
			b.Fatal(err)
		}
	}
}
