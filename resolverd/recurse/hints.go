package recurse

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// Hints are the root servers a resolver starts from (RFC 8109): their
// names and addresses. Priming asks them for ". NS" and uses the answer.
type Hints struct {
	// Servers are the root servers' names (lower case, fully qualified)
	// with their addresses, in the order given.
	Servers []HintServer
}

// HintServer is one root server of the hints.
type HintServer struct {
	Name  string
	Addrs []netip.Addr
}

// DefaultHints returns IANA's root hints (named.root), IPv4 and IPv6.
func DefaultHints() *Hints {
	rows := []struct{ letter, v4, v6 string }{
		{"a", "198.41.0.4", "2001:503:ba3e::2:30"},
		{"b", "170.247.170.2", "2801:1b8:10::b"},
		{"c", "192.33.4.12", "2001:500:2::c"},
		{"d", "199.7.91.13", "2001:500:2d::d"},
		{"e", "192.203.230.10", "2001:500:a8::e"},
		{"f", "192.5.5.241", "2001:500:2f::f"},
		{"g", "192.112.36.4", "2001:500:12::d0d"},
		{"h", "198.97.190.53", "2001:500:1::53"},
		{"i", "192.36.148.17", "2001:7fe::53"},
		{"j", "192.58.128.30", "2001:503:c27::2:30"},
		{"k", "193.0.14.129", "2001:7fd::1"},
		{"l", "199.7.83.42", "2001:500:9f::42"},
		{"m", "202.12.27.33", "2001:dc3::35"},
	}
	h := &Hints{}
	for _, r := range rows {
		h.Servers = append(h.Servers, HintServer{
			Name:  r.letter + ".root-servers.net.",
			Addrs: []netip.Addr{netip.MustParseAddr(r.v4), netip.MustParseAddr(r.v6)},
		})
	}
	return h
}

// LoadHints reads a root hints file (see ParseHints).
func LoadHints(path string) (*Hints, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("recurse: root hints: %w", err)
	}
	defer f.Close()
	return ParseHints(f, path)
}

// maxHintServers bounds the servers a hints file may name.
const maxHintServers = 64

// ParseHints reads root hints in zone-file syntax, as IANA's named.root:
// NS records owned by the root naming the servers, and A and AAAA
// records giving their addresses. Every server named must have an
// address; an address record for a name no NS record names, a record of
// another type, or an NS record not owned by "." is an error. source names
// the input in errors, which also give the line.
func ParseHints(r io.Reader, source string) (*Hints, error) {
	zp := dns.NewZoneParser(r, ".", source)
	zp.SetIncludeAllowed(false)
	zp.SetDefaultTTL(3600000) // named.root's; a TTL is of no use in hints
	var names []string
	addrs := map[string][]netip.Addr{}
	type addrAt struct {
		name string
		rr   string
	}
	var order []addrAt
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		owner := strings.ToLower(h.Name)
		at := func(why string) error {
			return fmt.Errorf("recurse: root hints %s: record %q: %s", source, rr.String(), why)
		}
		switch v := rr.(type) {
		case *dns.NS:
			if owner != "." {
				return nil, at("NS records of the hints must be owned by the root")
			}
			n := strings.ToLower(v.Ns)
			if !slices.Contains(names, n) {
				if len(names) == maxHintServers {
					return nil, at(fmt.Sprintf("more than %d servers", maxHintServers))
				}
				names = append(names, n)
			}
		case *dns.A:
			addrs[owner] = appendAddr(addrs[owner], v.A)
			order = append(order, addrAt{owner, rr.String()})
		case *dns.AAAA:
			addrs[owner] = appendAddr(addrs[owner], v.AAAA)
			order = append(order, addrAt{owner, rr.String()})
		default:
			return nil, at("only NS, A and AAAA records belong in root hints")
		}
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("recurse: root hints %s: %w", source, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("recurse: root hints %s: no NS record owned by the root", source)
	}
	for _, a := range order {
		if !slices.Contains(names, a.name) {
			return nil, fmt.Errorf("recurse: root hints %s: record %q: an address for %s, which no NS record names", source, a.rr, a.name)
		}
	}
	h := &Hints{}
	for _, n := range names {
		if len(addrs[n]) == 0 {
			return nil, fmt.Errorf("recurse: root hints %s: server %s has no A or AAAA record", source, n)
		}
		h.Servers = append(h.Servers, HintServer{Name: n, Addrs: addrs[n]})
	}
	return h, nil
}

// appendAddr appends ip (from a parsed record) to list unless it is there.
func appendAddr(list []netip.Addr, ip []byte) []netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return list
	}
	a = a.Unmap()
	if slices.Contains(list, a) {
		return list
	}
	return append(list, a)
}

// delegation returns the hints as the root's delegation, for priming.
func (h *Hints) delegation(ttl uint32) *Delegation {
	d := &Delegation{Zone: ".", Addrs: map[string][]netip.Addr{}}
	for _, s := range h.Servers {
		d.NS = append(d.NS, s.Name)
		d.Addrs[s.Name] = slices.Clone(s.Addrs)
	}
	d.TTL = ttl
	return d
}

// errNoHints is returned when hints name no server.
var errNoHints = errors.New("recurse: root hints name no server")
