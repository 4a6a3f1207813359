package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/lookup"
)

// lookupBudget bounds one /lookup, as dnsd bounds one query.
const lookupBudget = 1800 * time.Millisecond

// jsonQuestion, jsonRR and jsonAnswer are the dns-json format of Google's
// and Cloudflare's JSON APIs, plus where the answer came from.
type jsonQuestion struct {
	Name string `json:"name"`
	Type uint16 `json:"type"`
}

type jsonRR struct {
	Name string `json:"name"`
	Type uint16 `json:"type"`
	TTL  uint32 `json:"TTL"`
	Data string `json:"data"`
}

type jsonAnswer struct {
	Status    int            `json:"Status"`
	TC        bool           `json:"TC"`
	RD        bool           `json:"RD"`
	RA        bool           `json:"RA"`
	AD        bool           `json:"AD"`
	CD        bool           `json:"CD"`
	Question  []jsonQuestion `json:"Question"`
	Answer    []jsonRR       `json:"Answer,omitempty"`
	Authority []jsonRR       `json:"Authority,omitempty"`
	Comment   string         `json:"Comment,omitempty"`
	Source    string         `json:"Source"`
}

func (a *API) lookup(w http.ResponseWriter, r *http.Request) {
	q, msg := parseLookup(r)
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), lookupBudget)
	defer cancel()
	res, err := a.chain.Lookup(ctx, &q)
	if err != nil {
		a.log.Debug("lookup failed", "key", q.Key, "err", err)
		code := http.StatusServiceUnavailable
		if errors.Is(err, lookup.ErrTimeout) {
			code = http.StatusGatewayTimeout
		}
		writeError(w, code, err.Error())
		return
	}
	wire := dnsmsg.AppendReply(nil, res.Stored(), &q, dnsmsg.ReplyOptions{Age: res.Age(), Stale: res.Stale()})
	m := new(dns.Msg)
	if err := m.Unpack(wire); err != nil {
		writeError(w, http.StatusInternalServerError, "stored answer unreadable")
		return
	}
	out := jsonAnswer{
		Status: m.Rcode, TC: m.Truncated, RD: m.RecursionDesired, RA: m.RecursionAvailable,
		AD: m.AuthenticatedData, CD: m.CheckingDisabled, Source: string(res.Source),
		Answer: jsonRRs(m.Answer), Authority: jsonRRs(m.Ns),
	}
	for _, qq := range m.Question {
		out.Question = append(out.Question, jsonQuestion{Name: qq.Name, Type: qq.Qtype})
	}
	if res.Stale() {
		out.Comment = "stale answer (RFC 8767): the resolver could not be reached"
	}
	writeJSON(w, http.StatusOK, out)
}

func jsonRRs(rrs []dns.RR) []jsonRR {
	var out []jsonRR
	for _, rr := range rrs {
		h := rr.Header()
		out = append(out, jsonRR{
			Name: h.Name, Type: h.Rrtype, TTL: h.Ttl,
			Data: strings.TrimPrefix(rr.String(), h.String()),
		})
	}
	return out
}

// parseLookup reads name, type (mnemonic or number, default A), do and cd.
// It returns a message for the client when the request is bad.
func parseLookup(r *http.Request) (dnsmsg.Query, string) {
	v := r.URL.Query()
	name := v.Get("name")
	if name == "" {
		return dnsmsg.Query{}, "missing name"
	}
	if _, ok := dns.IsDomainName(name); !ok || !dns.IsFqdn(dns.Fqdn(name)) || len(dns.Fqdn(name)) > 254 {
		return dnsmsg.Query{}, "bad name"
	}
	qtype, ok := parseType(v.Get("type"))
	if !ok {
		return dnsmsg.Query{}, "bad type"
	}
	do, cd := parseBool(v.Get("do")), parseBool(v.Get("cd"))
	q := dnsmsg.Query{Name: dns.Fqdn(name), Type: qtype, Class: dns.ClassINET, RD: true, DO: do, CD: cd}
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
