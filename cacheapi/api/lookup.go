package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/lookup"
)

// lookupBudget bounds one lookup, as dnsd bounds one query.
const lookupBudget = 1800 * time.Millisecond

// sourceLocal is the Source of an answer the API made itself (RFC 8482's
// ANY, a refused zone transfer, a meta type).
const sourceLocal = "local"

// errReply is wrapped when a reply could not be built.
var errReply = errors.New("api: reply could not be built")

// jsonQuestion, jsonRR and jsonAnswer are the dns-json format of Google's
// and Cloudflare's JSON APIs, plus where the answer came from: Source
// (l1, redis, stale, resolver, local), Shard (the Redis shard, for a redis
// answer) and TTL (seconds the cached entry stays fresh).
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
	Shard     string         `json:"Shard,omitempty"`
	TTL       uint32         `json:"TTL"`
}

// reply is the answer to one question: its wire form (the query's ID,
// TTLs aged), and the chain's result when the chain made it.
type reply struct {
	wire    []byte
	res     *lookup.Result // nil for an answer the API made itself
	comment string         // why, for such an answer
}

// answer puts q (whose DNS form is req) through the special types, then
// the lookup chain within lookupBudget. An error is the chain's, or wraps
// errReply.
func (a *API) answer(ctx context.Context, req *dns.Msg, q *dnsmsg.Query) (reply, error) {
	if m, why := dnsmsg.LocalAnswer(req, q); m != nil {
		wire, err := m.Pack()
		if err != nil {
			return reply{}, fmt.Errorf("%w: %w", errReply, err)
		}
		return reply{wire: wire, comment: why}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, lookupBudget)
	defer cancel()
	res, err := a.chain.Lookup(ctx, q)
	if err != nil {
		return reply{}, err
	}
	wire := dnsmsg.AppendReply(nil, res.Stored(), q, res.ReplyOptions())
	return reply{wire: wire, res: res}, nil
}

func (a *API) lookup(w http.ResponseWriter, r *http.Request) {
	a.lookupJSON(w, r, "application/json")
}

// lookupJSON answers name, type, do and cd from the query string in
// dns-json, sent as ctype.
func (a *API) lookupJSON(w http.ResponseWriter, r *http.Request, ctype string) {
	q, msg := parseLookup(r)
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	rep, err := a.answer(r.Context(), asMsg(&q), &q)
	if err != nil {
		// The error names the resolver or upstream: for the log only.
		switch {
		case errors.Is(err, errReply):
			a.log.Error("api: reply could not be built", "key", q.Key, "err", err)
			writeError(w, http.StatusInternalServerError, "the answer could not be built")
		case errors.Is(err, lookup.ErrTimeout):
			a.fails.warn("api: lookup timed out", err, "key", q.Key)
			writeError(w, http.StatusGatewayTimeout, "lookup timed out: the resolver did not answer in time")
		default:
			a.fails.warn("api: lookup failed", err, "key", q.Key)
			writeError(w, http.StatusServiceUnavailable, "lookup failed: the resolver could not be reached")
		}
		return
	}
	m := new(dns.Msg)
	if err := m.Unpack(rep.wire); err != nil {
		writeError(w, http.StatusInternalServerError, "stored answer unreadable")
		return
	}
	out := toJSON(m)
	a.describe(r.Context(), &out, &q, rep)
	writeJSONAs(w, ctype, http.StatusOK, out)
}

// describe fills in where an answer came from.
func (a *API) describe(ctx context.Context, out *jsonAnswer, q *dnsmsg.Query, rep reply) {
	res := rep.res
	if res == nil {
		out.Source, out.Comment = sourceLocal, rep.comment
		return
	}
	out.Source = string(res.Source)
	if age := res.Age(); !res.Stale() && age < res.Entry.TTL {
		out.TTL = res.Entry.TTL - age
	}
	switch res.Source {
	case lookup.SourceL1:
		out.Comment = "answered from this frontend's in-process cache (L1)"
	case lookup.SourceRedis:
		out.Comment = "answered from the shared cache (Redis)"
		if a.cache != nil {
			if out.Shard = a.cache.Shard(ctx, q.Key); out.Shard != "" {
				out.Comment = "answered from the Redis shard " + out.Shard
			}
		}
	case lookup.SourceResolver:
		out.Comment = "answered by the resolver"
	case lookup.SourceStale:
		out.Comment = "stale answer (RFC 8767): the resolver could not be reached"
	}
}

// toJSON turns a DNS message into dns-json.
func toJSON(m *dns.Msg) jsonAnswer {
	out := jsonAnswer{
		Status: m.Rcode, TC: m.Truncated, RD: m.RecursionDesired, RA: m.RecursionAvailable,
		AD: m.AuthenticatedData, CD: m.CheckingDisabled,
		Answer: jsonRRs(m.Answer), Authority: jsonRRs(m.Ns),
	}
	for _, qq := range m.Question {
		out.Question = append(out.Question, jsonQuestion{Name: qq.Name, Type: qq.Qtype})
	}
	return out
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
	return parseQuestion(v.Get("name"), v)
}
