package dnsmsg

import (
	"errors"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// maxNameText bounds a name as sent, in presentation format, before it is
// packed: the longest 255-octet name written with \DDD escapes fits.
const maxNameText = 4*255 + 2

// ParseName checks a name as a person or a file wrote it and returns it in
// the form dnsd sees names in (packed to the wire and read back: escapes
// such as \065 normalised, case kept, final dot added). The error message
// is fit to show the person.
func ParseName(s string) (string, error) {
	switch {
	case s == "":
		return "", errors.New("missing name")
	case len(s) > maxNameText:
		return "", errors.New("name too long")
	}
	if _, ok := dns.IsDomainName(s); !ok {
		return "", errors.New("bad name")
	}
	fq := dns.Fqdn(s)
	if !dns.IsFqdn(fq) {
		return "", errors.New("bad name") // e.g. `\0\`: the final dot is escaped
	}
	var buf [256]byte
	n, err := dns.PackDomainName(fq, buf[:], 0, nil, false)
	if err != nil {
		return "", errors.New("bad name: longer than 255 octets or an empty label")
	}
	name, _, err := dns.UnpackDomainName(buf[:n], 0)
	if err != nil {
		return "", errors.New("bad name")
	}
	return name, nil
}

// ParseType reads a type by mnemonic (any case), number or RFC 3597 TYPEn;
// "" is A. Type 0 is refused.
func ParseType(s string) (uint16, bool) {
	if s == "" {
		return dns.TypeA, true
	}
	if n, err := strconv.ParseUint(s, 10, 16); err == nil {
		return uint16(n), n != 0
	}
	up := strings.ToUpper(s)
	if t, ok := dns.StringToType[up]; ok {
		return t, true
	}
	if rest, ok := strings.CutPrefix(up, "TYPE"); ok {
		n, err := strconv.ParseUint(rest, 10, 16)
		return uint16(n), err == nil && n != 0
	}
	return 0, false
}

// ParseKeyType reads a type as a cache key writes it (TypeString): a
// mnemonic in upper case, or TYPEn. It allocates nothing, so a cache read
// can rebuild a question from its key.
func ParseKeyType(s string) (uint16, bool) {
	if t, ok := dns.StringToType[s]; ok {
		return t, true
	}
	if rest, ok := strings.CutPrefix(s, "TYPE"); ok {
		n, err := strconv.ParseUint(rest, 10, 16)
		return uint16(n), err == nil && n != 0
	}
	return 0, false
}

// ParseClass reads a class as a cache key writes it (ClassString): a
// mnemonic, or CLASSn.
func ParseClass(s string) (uint16, bool) {
	if c, ok := dns.StringToClass[s]; ok {
		return c, true
	}
	if rest, ok := strings.CutPrefix(s, "CLASS"); ok {
		n, err := strconv.ParseUint(rest, 10, 16)
		return uint16(n), err == nil && n != 0
	}
	return 0, false
}

// ErrBadKey is returned by ParseKey for a string that is not a cache key.
var ErrBadKey = errors.New("dnsmsg: not a cache key")

// ParseKey reads a cache key (see Key) back into its question: the name in
// key form (lowercased, final dot), type, class and the DO and CD bits.
func ParseKey(key string) (q Query, err error) {
	rest, ok := strings.CutPrefix(key, "dns:{")
	if !ok {
		return q, ErrBadKey
	}
	end := strings.LastIndex(rest, "}:")
	if end < 0 {
		return q, ErrBadKey
	}
	q.Name, rest = rest[:end], rest[end+2:]
	parts := strings.Split(rest, ":")
	if len(parts) < 2 || len(parts) > 4 {
		return q, ErrBadKey
	}
	if q.Type, ok = ParseKeyType(parts[0]); !ok || parts[0] != TypeString(q.Type) {
		return q, ErrBadKey
	}
	if q.Class, ok = ParseClass(parts[1]); !ok {
		return q, ErrBadKey
	}
	for _, f := range parts[2:] {
		switch {
		case f == "do" && !q.DO && !q.CD:
			q.DO = true
		case f == "cd" && !q.CD:
			q.CD = true
		default:
			return q, ErrBadKey
		}
	}
	if _, ok := dns.IsDomainName(q.Name); !ok || !dns.IsFqdn(q.Name) {
		return q, ErrBadKey
	}
	q.RD = true
	q.Key = key
	if Key(q.Name, q.Type, q.Class, q.DO, q.CD) != key {
		return q, ErrBadKey
	}
	return q, nil
}
