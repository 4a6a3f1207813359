package fleetstats

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Frontend is one frontend's published numbers. Counters count since the
// frontend started; QPS and the latency quantiles cover its last publish
// interval only.
type Frontend struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"` // "dnsd" or "cacheapi"
	StartedAt time.Time `json:"started_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// AgeMs is how long before the read the frontend last published.
	AgeMs      int64 `json:"age_ms"`
	IntervalMs int64 `json:"interval_ms"`

	Counts

	QPS   float64 `json:"qps"`
	P50Ms float64 `json:"p50_ms"`
	P90Ms float64 `json:"p90_ms"`
	P99Ms float64 `json:"p99_ms"`
}

// Counts are a frontend's lookups by how they were answered, as the
// frontends, the fleet and the serving process report them.
type Counts struct {
	Queries   uint64 `json:"queries"`    // answers and failures
	L1Hits    uint64 `json:"l1_hits"`    // answered from the in-process cache
	RedisHits uint64 `json:"redis_hits"` // answered from a Redis shard
	Misses    uint64 `json:"misses"`     // answered by the resolver
	Stale     uint64 `json:"stale"`      // answered stale (RFC 8767)
	Errors    uint64 `json:"errors"`     // no answer (SERVFAIL)
	// HitRatio is (L1Hits+RedisHits)/Queries; null before any query.
	HitRatio *float64 `json:"hit_ratio"`
}

// add adds o's counts to c (not its hit ratio: see setHitRatio).
func (c *Counts) add(o Counts) {
	c.Queries += o.Queries
	c.L1Hits += o.L1Hits
	c.RedisHits += o.RedisHits
	c.Misses += o.Misses
	c.Stale += o.Stale
	c.Errors += o.Errors
}

// setHitRatio sets HitRatio from the counts.
func (c *Counts) setHitRatio() { c.HitRatio = ratio(c.L1Hits+c.RedisHits, c.Queries) }

// Fleet is the sum over the frontends.
type Fleet struct {
	Frontends int `json:"frontends"`
	Counts
	QPS float64 `json:"qps"`
	// MaxP99Ms is the highest p99 of any frontend (quantiles do not add).
	MaxP99Ms float64 `json:"max_p99_ms"`
}

// Sum adds up the frontends' numbers.
func Sum(fs []Frontend) Fleet {
	var t Fleet
	for _, f := range fs {
		t.Frontends++
		t.add(f.Counts)
		t.QPS += f.QPS
		t.MaxP99Ms = max(t.MaxP99Ms, f.P99Ms)
	}
	t.setHitRatio()
	return t
}

// ratio returns part/whole, or nil when whole is 0.
func ratio(part, whole uint64) *float64 {
	if whole == 0 {
		return nil
	}
	r := float64(part) / float64(whole)
	return &r
}

// ReadFleet returns the frontends that published recently enough that
// their hash has not expired, sorted by id. It first removes from the set
// the members whose hash expired well before now. A hash that does not
// parse is left out. The error is for a failed Redis call only.
func ReadFleet(ctx context.Context, c redis.Cmdable, now time.Time) ([]Frontend, error) {
	var ids *redis.StringSliceCmd
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		cutoff := now.Add(-pruneGrace).UnixMilli()
		p.ZRemRangeByScore(ctx, FrontendsKey, "-inf", "("+strconv.FormatInt(cutoff, 10))
		ids = p.ZRevRange(ctx, FrontendsKey, 0, MaxFrontends-1)
		return nil
	})
	if err != nil && ids.Err() == nil {
		err = nil // only the prune failed
	}
	if err != nil {
		return nil, fmt.Errorf("fleetstats: read frontends: %w", err)
	}
	if len(ids.Val()) == 0 {
		return []Frontend{}, nil
	}
	hashes := make([]*redis.MapStringStringCmd, len(ids.Val()))
	_, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids.Val() {
			hashes[i] = p.HGetAll(ctx, FrontendKey(id))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fleetstats: read frontends: %w", err)
	}
	out := make([]Frontend, 0, len(hashes))
	for i, h := range hashes {
		if len(h.Val()) == 0 {
			continue // expired: the frontend stopped publishing
		}
		f, err := ParseFrontend(ids.Val()[i], h.Val(), now)
		if err != nil {
			continue
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b Frontend) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// ParseFrontend decodes the hash fields of frontend id, as read from
// Redis, with now for its age. updated_at is required; a missing number
// reads as 0; a malformed, negative or non-finite one is an error, and so
// are more answers and errors than queries. Unknown fields are ignored.
func ParseFrontend(id string, h map[string]string, now time.Time) (Frontend, error) {
	f := Frontend{ID: id, Kind: h["kind"]}
	p := fieldParser{h: h}
	if _, ok := h["updated_at"]; !ok {
		return Frontend{}, fmt.Errorf("fleetstats: frontend %q: no updated_at", id)
	}
	f.UpdatedAt = p.millis("updated_at")
	f.StartedAt = p.millis("started_at")
	f.IntervalMs = int64(p.uint("interval_ms"))
	f.Queries = p.uint("queries")
	f.L1Hits = p.uint("l1_hits")
	f.RedisHits = p.uint("redis_hits")
	f.Misses = p.uint("misses")
	f.Stale = p.uint("stale")
	f.Errors = p.uint("errors")
	f.QPS = p.float("qps")
	f.P50Ms = p.float("p50_ms")
	f.P90Ms = p.float("p90_ms")
	f.P99Ms = p.float("p99_ms")
	if p.err != nil {
		return Frontend{}, fmt.Errorf("fleetstats: frontend %q: %w", id, p.err)
	}
	// Every field is below 2^63 and so is each partial sum that passed,
	// so no addition wraps.
	var sum uint64
	for _, n := range []uint64{f.L1Hits, f.RedisHits, f.Misses, f.Stale, f.Errors} {
		if sum += n; sum > f.Queries {
			return Frontend{}, fmt.Errorf("fleetstats: frontend %q: answers and errors add up to more than queries", id)
		}
	}
	f.AgeMs = max(now.Sub(f.UpdatedAt).Milliseconds(), 0)
	f.setHitRatio()
	return f, nil
}

// maxMillis bounds the unix ms a timestamp field may hold (year 9999), so
// that the time stays representable and encodable as JSON.
const maxMillis = 253402300799999

// fieldParser reads typed fields of a hash, keeping the first error.
type fieldParser struct {
	h   map[string]string
	err error
}

func (p *fieldParser) fail(name, v string, err error) {
	if p.err == nil {
		p.err = fmt.Errorf("field %s=%q: %w", name, v, err)
	}
}

func (p *fieldParser) uint(name string) uint64 {
	v, ok := p.h[name]
	if !ok {
		return 0
	}
	n, err := strconv.ParseUint(v, 10, 63)
	if err != nil {
		p.fail(name, v, err)
		return 0
	}
	return n
}

func (p *fieldParser) millis(name string) time.Time {
	ms := p.uint(name)
	if ms > maxMillis {
		p.fail(name, p.h[name], errors.New("out of range"))
		return time.Time{}
	}
	if _, ok := p.h[name]; !ok {
		return time.Time{}
	}
	return time.UnixMilli(int64(ms)).UTC()
}

func (p *fieldParser) float(name string) float64 {
	v, ok := p.h[name]
	if !ok {
		return 0
	}
	x, err := strconv.ParseFloat(v, 64)
	if err == nil && (math.IsNaN(x) || math.IsInf(x, 0) || x < 0) {
		err = errors.New("not a finite non-negative number")
	}
	if err != nil {
		p.fail(name, v, err)
		return 0
	}
	return x
}
