package api

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/dnsmsg"
)

// maxNameText bounds a name as sent, in presentation format, before it is
// packed: the longest 255-octet name written with \DDD escapes fits.
const maxNameText = 4*255 + 2

// parseName checks a name as a client wrote it and returns it in the form
// dnsd sees names in (packed to the wire and read back: escapes such as
// \065 normalised, case kept, final dot added). The message is for the
// client when the name is refused.
func parseName(s string) (string, string) {
	switch {
	case s == "":
		return "", "missing name"
	case len(s) > maxNameText:
		return "", "name too long"
	}
	if _, ok := dns.IsDomainName(s); !ok {
		return "", "bad name"
	}
	fq := dns.Fqdn(s)
	if !dns.IsFqdn(fq) {
		return "", "bad name" // e.g. `\0\`: the final dot is escaped
	}
	var buf [256]byte
	n, err := dns.PackDomainName(fq, buf[:], 0, nil, false)
	if err != nil {
		return "", "bad name: longer than 255 octets or an empty label"
	}
	name, _, err := dns.UnpackDomainName(buf[:n], 0)
	if err != nil {
		return "", "bad name"
	}
	return name, ""
}

// parseQuestion reads a question from a name (as parseName takes it) and
// the parameters type (mnemonic, number or TYPEn; default A), do and cd.
// The message is for the client when the request is bad.
func parseQuestion(rawName string, v url.Values) (dnsmsg.Query, string) {
	name, msg := parseName(rawName)
	if msg != "" {
		return dnsmsg.Query{}, msg
	}
	qtype, ok := parseType(v.Get("type"))
	if !ok {
		return dnsmsg.Query{}, "bad type"
	}
	q := dnsmsg.Query{Name: name, Type: qtype, Class: dns.ClassINET, RD: true, DO: parseBool(v.Get("do")), CD: parseBool(v.Get("cd"))}
	q.Key = dnsmsg.Key(q.Name, q.Type, q.Class, q.DO, q.CD)
	return q, ""
}

func parseType(s string) (uint16, bool) {
	if s == "" {
		return dns.TypeA, true
	}
	if n, err := strconv.ParseUint(s, 10, 16); err == nil {
		return uint16(n), n != 0
	}
	t, ok := dns.StringToType[strings.ToUpper(s)]
	if !ok && strings.HasPrefix(strings.ToUpper(s), "TYPE") {
		n, err := strconv.ParseUint(s[4:], 10, 16)
		return uint16(n), err == nil && n != 0
	}
	return t, ok
}

func parseBool(s string) bool {
	b, err := strconv.ParseBool(s)
	return err == nil && b
}

// asMsg is the DNS query a question from the query string stands for.
func asMsg(q *dnsmsg.Query) *dns.Msg {
	m := new(dns.Msg)
	m.Id = q.ID
	m.RecursionDesired = q.RD
	m.CheckingDisabled = q.CD
	m.Question = []dns.Question{{Name: q.Name, Qtype: q.Type, Qclass: q.Class}}
	if q.DO {
		m.SetEdns0(dnsmsg.MaxUDPSize, true)
	}
	return m
}
