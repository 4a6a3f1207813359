package dnsmsg

import (
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Key is the cache key of a question, the one layout every frontend and
// resolverd's workers read and write:
//
//	dns:{<qname lowercased, with final dot>}:<TYPE>:<CLASS>[:do][:cd]
//
// The {...} hash tag makes go-redis Ring and Redis Cluster place every type
// of one name on the same shard. Unknown types and classes use the RFC 3597
// spelling (TYPE65280, CLASS3).
func Key(name string, qtype, qclass uint16, do, cd bool) string {
	var b strings.Builder
	b.Grow(len(name) + 24)
	b.WriteString("dns:{")
	b.WriteString(LowerName(dns.Fqdn(name)))
	b.WriteString("}:")
	b.WriteString(TypeString(qtype))
	b.WriteByte(':')
	b.WriteString(ClassString(qclass))
	if do {
		b.WriteString(":do")
	}
	if cd {
		b.WriteString(":cd")
	}
	return b.String()
}

// TypeString names a type as dig does: its mnemonic, or TYPEn.
func TypeString(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// ClassString names a class as dig does: its mnemonic, or CLASSn.
func ClassString(c uint16) string {
	if s, ok := dns.ClassToString[c]; ok {
		return s
	}
	return "CLASS" + strconv.Itoa(int(c))
}

// LowerName lowercases the ASCII letters of a domain name and nothing else:
// DNS names compare case-insensitively in ASCII only (RFC 4343), and bytes
// above 0x7F are octets, not UTF-8, so strings.ToLower would corrupt them.
func LowerName(name string) string {
	for i := 0; i < len(name); i++ {
		if 'A' <= name[i] && name[i] <= 'Z' {
			b := []byte(name)
			for j := i; j < len(b); j++ {
				b[j] = lower(b[j])
			}
			return string(b)
		}
	}
	return name
}

// EqualNames reports whether two domain names are equal ignoring ASCII case.
func EqualNames(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}
