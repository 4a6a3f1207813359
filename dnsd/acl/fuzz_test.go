package acl

import (
	"net/netip"
	"slices"
	"testing"
)

// linearAllowed is the obvious reference for Allowed.
func linearAllowed(a *ACL, addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range a.set.Load().prefixes {
		if p.Contains(addr.WithZone("")) {
			return true
		}
	}
	return false
}

// probes returns addresses at and just beyond the edges of each prefix.
func probes(a *ACL) []netip.Addr {
	var out []netip.Addr
	for _, p := range a.set.Load().prefixes {
		first := p.Addr()
		last := first
		if p.Addr().Is4() {
			r := prefixRange4(p)
			last = netip.AddrFrom4([4]byte{byte(r.last >> 24), byte(r.last >> 16), byte(r.last >> 8), byte(r.last)})
		} else {
			r := prefixRange6(p)
			var b [16]byte
			for i := range 8 {
				b[i] = byte(r.last.hi >> (56 - 8*i))
				b[8+i] = byte(r.last.lo >> (56 - 8*i))
			}
			last = netip.AddrFrom16(b)
		}
		out = append(out, first, last, first.Prev(), last.Next())
	}
	return out
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "any", "0.0.0.0/0,::/0", Default, "192.0.2.1", "2001:db8::1",
		"10.1.2.3/8,2001:db8:1:2::/48", "::ffff:10.0.0.0/104", "::ffff:0:0/95",
		"192.0.2.0/25,192.0.2.128/25", "255.255.255.255,ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		"10.0.0.0/33", "fe80::1%eth0", "a,,b", ",", " , ", "::/129", "1.2.3.4/8/9",
	} {
		f.Add(s, []byte{10, 1, 2, 3})
		f.Add(s, []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	}
	f.Fuzz(func(t *testing.T, list string, probe []byte) {
		a, err := Parse(list)
		if err != nil {
			if a != nil {
				t.Fatalf("Parse(%q) returned an ACL and error %v", list, err)
			}
			return
		}
		s := a.String()
		b, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q).String() = %q does not parse: %v", list, s, err)
		}
		if sa, sb := a.set.Load(), b.set.Load(); !slices.Equal(sa.prefixes, sb.prefixes) || !slices.Equal(sa.v4, sb.v4) || !slices.Equal(sa.v6, sb.v6) {
			t.Fatalf("Parse(%q) and Parse(%q) differ: %v vs %v", list, s, a, b)
		}
		if got := b.String(); got != s {
			t.Fatalf("String not stable: %q then %q", s, got)
		}
		addrs := probes(a)
		if x, ok := netip.AddrFromSlice(probe); ok {
			addrs = append(addrs, x)
		}
		for _, x := range addrs {
			if !x.IsValid() {
				continue
			}
			if got, want := a.Allowed(x), linearAllowed(a, x); got != want {
				t.Fatalf("ACL %s: Allowed(%s) = %v, want %v", a, x, got, want)
			}
		}
	})
}
