package acl

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Any is the -allow value that admits every client.
const Any = "any"

// Default is the ACL used when -allow is empty. It admits only addresses
// that cannot reach dnsd from the public internet, so a server started
// with no -allow is never an open resolver (and so never a reflector for
// amplification attacks):
//
//   - 127.0.0.0/8, ::1/128: loopback, the host itself (dnsd as the
//     system resolver in /etc/resolv.conf).
//   - 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16: RFC 1918 private
//     networks, where a fleet of clients and frontends usually lives.
//   - fc00::/7: RFC 4193 unique local addresses, IPv6's private networks.
//   - 169.254.0.0/16, fe80::/10: link-local (RFC 3927, RFC 4291); never
//     routed beyond one link, e.g. a host and its containers or VMs.
//   - 100.64.0.0/10: RFC 6598 shared address space, not routed on the
//     internet; used by carrier-grade NAT and by overlay networks and
//     VPNs (e.g. Kubernetes pod ranges, Tailscale). Behind an ISP's CGNAT
//     this space is shared with the ISP's other customers: set -allow
//     explicitly there.
const Default = "127.0.0.0/8,::1/128," +
	"10.0.0.0/8,172.16.0.0/12,192.168.0.0/16," +
	"fc00::/7," +
	"169.254.0.0/16,fe80::/10," +
	"100.64.0.0/10"

// Parse builds an ACL from a comma separated list of CIDR prefixes
// ("10.0.0.0/8", "2001:db8::/32") and bare addresses ("192.0.2.1" means
// /32, "2001:db8::1" means /128). Spaces around entries are ignored.
//
// An empty (or all-space) list means Default. "any" (any case) admits
// every client, as does "0.0.0.0/0,::/0". Host bits under the mask are
// cleared ("10.1.2.3/8" is 10.0.0.0/8); IPv4-mapped IPv6 prefixes
// ("::ffff:10.0.0.0/104") become IPv4 prefixes, since Allowed unmaps
// addresses before matching. Empty entries, zones and malformed prefixes
// are errors.
func Parse(list string) (*ACL, error) {
	if strings.TrimSpace(list) == "" {
		list = Default
	}
	var ps []netip.Prefix
	for entry := range strings.SplitSeq(list, ",") {
		entry = strings.TrimSpace(entry)
		p, err := parseEntry(entry, list)
		if err != nil {
			return nil, err
		}
		ps = append(ps, p...)
	}
	return build(ps), nil
}

var (
	anyV4 = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	anyV6 = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
)

// parseEntry parses one list entry into one prefix, or two for "any".
func parseEntry(entry, list string) ([]netip.Prefix, error) {
	switch {
	case entry == "":
		return nil, fmt.Errorf("acl: empty entry in %q", list)
	case strings.EqualFold(entry, Any):
		return []netip.Prefix{anyV4, anyV6}, nil
	case strings.Contains(entry, "/"):
		p, err := netip.ParsePrefix(entry)
		if err != nil {
			return nil, fmt.Errorf("acl: bad prefix %q: %w", entry, err)
		}
		return []netip.Prefix{canonical(p)}, nil
	default:
		a, err := netip.ParseAddr(entry)
		if err != nil {
			return nil, fmt.Errorf("acl: bad address %q: %w", entry, err)
		}
		if a.Zone() != "" {
			return nil, fmt.Errorf("acl: bad address %q: %w", entry, errZone)
		}
		return []netip.Prefix{canonical(netip.PrefixFrom(a, a.BitLen()))}, nil
	}
}

var errZone = errors.New("IPv6 zones are not allowed")

// canonical masks p and turns an IPv4-mapped IPv6 prefix into IPv4.
func canonical(p netip.Prefix) netip.Prefix {
	p = p.Masked()
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p
}

// comparePrefix orders IPv4 before IPv6, then by address, then shorter
// prefixes first, so a prefix comes before every prefix it contains.
func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c // netip orders IPv4 before IPv6
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

// build sorts canonical prefixes, drops those inside another, and
// computes the lookup ranges.
func build(ps []netip.Prefix) *ACL {
	slices.SortFunc(ps, comparePrefix)
	kept := ps[:0]
	for _, p := range ps {
		// Kept prefixes are disjoint and sorted, so only the last one can
		// contain p.
		if n := len(kept); n > 0 && kept[n-1].Bits() <= p.Bits() && kept[n-1].Contains(p.Addr()) {
			continue
		}
		kept = append(kept, p)
	}
	s := &set{prefixes: slices.Clip(kept)}
	for _, p := range s.prefixes {
		if p.Addr().Is4() {
			s.v4 = appendRange4(s.v4, prefixRange4(p))
		} else {
			s.v6 = appendRange6(s.v6, prefixRange6(p))
		}
	}
	a := new(ACL)
	a.set.Store(s)
	return a
}
