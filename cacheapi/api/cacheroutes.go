package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
)

// Budgets of the /cache routes. A flush stays inside the 10 s write
// timeout of the daemons' HTTP servers.
const (
	inspectBudget = 2 * time.Second
	flushBudget   = 8 * time.Second
)

// cacheEntry is GET /cache/{name}'s answer: the entry as stored, and its
// records in dns-json with their TTLs aged.
type cacheEntry struct {
	Key          string   `json:"key"`
	Tier         string   `json:"tier"`            // "redis" or "l1"
	Shard        string   `json:"shard,omitempty"` // the Redis shard that holds it
	StoredAt     string   `json:"stored_at"`       // RFC 3339
	TTLOriginal  uint32   `json:"ttl_original"`
	TTLRemaining uint32   `json:"ttl_remaining"`
	Stale        bool     `json:"stale"` // past its TTL, inside its stale window
	StaleUntil   string   `json:"stale_until"`
	SizeBytes    int      `json:"size_bytes"`
	Status       int      `json:"Status"`
	Answer       []jsonRR `json:"Answer,omitempty"`
	Authority    []jsonRR `json:"Authority,omitempty"`
}

// flushed is DELETE /cache/{name}'s answer.
type flushed struct {
	Deleted int      `json:"deleted"`
	Name    string   `json:"name"`
	Suffix  bool     `json:"suffix"`
	Shards  []string `json:"shards,omitempty"` // the Redis shards searched (not on 503)
	Error   string   `json:"error,omitempty"`
}

// pathName reads {name} from the path: percent-decoded, then checked as
// parseName does.
func pathName(r *http.Request) (string, string) {
	raw, err := url.PathUnescape(mux.Vars(r)["name"])
	if err != nil {
		return "", "bad percent-encoding in the name"
	}
	return raw, ""
}

func (a *API) cacheGet(w http.ResponseWriter, r *http.Request) {
	raw, msg := pathName(r)
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	q, msg := parseQuestion(raw, r.URL.Query())
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), inspectBudget)
	defer cancel()
	ins, err := a.cache.Inspect(ctx, q.Key)
	switch {
	case errors.Is(err, cache.ErrMiss):
		writeError(w, http.StatusNotFound, "not cached: "+q.Key)
		return
	case err != nil:
		a.fails.warn("api: cache inspect failed", err, "key", q.Key)
		writeError(w, http.StatusServiceUnavailable, "cache unavailable")
		return
	}
	out, err := describeEntry(ins, &q, a.now())
	if err != nil {
		a.log.Warn("api: stored answer unreadable", "key", q.Key, "err", err)
		writeError(w, http.StatusInternalServerError, "stored answer unreadable")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// describeEntry lays out ins as seen at now.
func describeEntry(ins *cache.Inspection, q *dnsmsg.Query, now time.Time) (cacheEntry, error) {
	e := ins.Entry
	age := uint32(min((e.Age(now)+time.Second-1)/time.Second, 1<<32-1))
	out := cacheEntry{
		Key: ins.Key, Tier: string(ins.Tier), Shard: ins.Shard,
		StoredAt: e.StoredAt.UTC().Format(time.RFC3339), TTLOriginal: e.TTL,
		Stale: !e.Fresh(now), StaleUntil: e.StaleUntil.UTC().Format(time.RFC3339),
		SizeBytes: ins.Size,
	}
	if age < e.TTL {
		out.TTLRemaining = e.TTL - age
	}
	wire := dnsmsg.AppendReply(nil, dnsmsg.Stored{Msg: e.Msg, Offsets: e.Offsets}, q, dnsmsg.ReplyOptions{Age: age})
	m := new(dns.Msg)
	if err := m.Unpack(wire); err != nil {
		return out, err
	}
	out.Status, out.Answer, out.Authority = m.Rcode, jsonRRs(m.Answer), jsonRRs(m.Ns)
	return out, nil
}

// cacheDelete flushes a name: every type, class, DO and CD variant; with
// suffix=1 also every name under it, on every shard. Mutating: see
// API.mutating.
func (a *API) cacheDelete(w http.ResponseWriter, r *http.Request) {
	raw, msg := pathName(r)
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	name, msg := parseName(raw)
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	v := r.URL.Query()
	if v.Has("type") {
		writeError(w, http.StatusBadRequest, "DELETE drops every type of the name: leave out type")
		return
	}
	suffix := false
	if s := v.Get("suffix"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			writeError(w, http.StatusBadRequest, "suffix must be 1, 0, true or false")
			return
		}
		suffix = b
	}
	name = dnsmsg.LowerName(name)
	ctx, cancel := context.WithTimeout(r.Context(), flushBudget)
	defer cancel()
	res, err := a.cache.Flush(ctx, name, suffix)
	out := flushed{Deleted: res.Deleted, Name: name, Suffix: suffix}
	if err != nil {
		// The error and the shard list name Redis addresses: log them.
		a.log.Warn("api: flush incomplete", "name", name, "suffix", suffix, "deleted", res.Deleted, "shards", res.Shards, "err", err)
		out.Error = "flush incomplete: the shared cache did not answer"
		writeJSON(w, http.StatusServiceUnavailable, out)
		return
	}
	out.Shards = res.Shards
	a.log.Info("flushed", "name", name, "suffix", suffix, "deleted", res.Deleted)
	writeJSON(w, http.StatusOK, out)
}
