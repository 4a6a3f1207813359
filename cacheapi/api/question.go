package api

import (
	"net/url"
	"strconv"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/dnsmsg"
)

// parseName is dnsmsg.ParseName with the message for the client.
func parseName(s string) (string, string) {
	name, err := dnsmsg.ParseName(s)
	if err != nil {
		return "", err.Error()
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
	qtype, ok := dnsmsg.ParseType(v.Get("type"))
	if !ok {
		return dnsmsg.Query{}, "bad type"
	}
	q := dnsmsg.Query{Name: name, Type: qtype, Class: dns.ClassINET, RD: true, DO: parseBool(v.Get("do")), CD: parseBool(v.Get("cd"))}
	q.Key = dnsmsg.Key(q.Name, q.Type, q.Class, q.DO, q.CD)
	return q, ""
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
