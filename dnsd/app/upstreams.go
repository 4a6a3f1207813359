package app

import (
	"net"
	"net/netip"
	"strconv"

	"github.com/miekg/dns"
)

// systemUpstreams reads the name servers of a resolv.conf file and drops
// every one that is dnsd itself (the same port on an address dnsd listens
// on, a wildcard listen address covering every local address), so a host
// that uses dnsd as its resolver does not make dnsd ask itself.
func systemUpstreams(path string, listen []string) []string {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range cc.Servers {
		addr := net.JoinHostPort(s, cc.Port)
		if !isSelf(addr, listen) {
			out = append(out, addr)
		}
	}
	return out
}

func isSelf(upstream string, listen []string) bool {
	up, err := netip.ParseAddrPort(upstream)
	if err != nil {
		return false
	}
	for _, l := range listen {
		host, port, err := net.SplitHostPort(l)
		if err != nil || port != itoa(up.Port()) {
			continue
		}
		if host == "" {
			if isLocal(up.Addr()) {
				return true
			}
			continue
		}
		if a, err := netip.ParseAddr(host); err == nil && (a == up.Addr().Unmap() || a.IsUnspecified() && isLocal(up.Addr())) {
			return true
		}
	}
	return false
}

// isLocal reports whether a is loopback or one of this host's addresses.
func isLocal(a netip.Addr) bool {
	a = a.Unmap()
	if a.IsLoopback() || a.IsUnspecified() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ia := range addrs {
		if p, err := netip.ParsePrefix(ia.String()); err == nil && p.Addr().Unmap() == a {
			return true
		}
	}
	return false
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }
