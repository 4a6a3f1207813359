package api

import (
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// limitedClients bounds how many clients the rate limiter remembers; the
// least recently seen is forgotten first (and starts again with a full
// bucket).
const limitedClients = 65536

// limiter is a token bucket per client: an IPv4 address, or an IPv6 /64
// (one host can hold a whole /64).
type limiter struct {
	rate, burst float64
	now         func() time.Time

	mu      sync.Mutex
	buckets *simplelru.LRU[netip.Prefix, *bucket]
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int, now func() time.Time) *limiter {
	b := float64(burst)
	if burst <= 0 {
		b = math.Max(1, rate)
	}
	lru, err := simplelru.NewLRU[netip.Prefix, *bucket](limitedClients, nil)
	if err != nil {
		panic("api: " + err.Error()) // size is positive
	}
	return &limiter{rate: rate, burst: b, now: now, buckets: lru}
}

// allow takes a token from client's bucket, or says how long until one is
// there.
func (l *limiter) allow(client netip.Prefix) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets.Get(client)
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets.Add(client, b)
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = math.Min(l.burst, b.tokens+d.Seconds()*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// clientPrefix is the bucket a request counts against.
func clientPrefix(r *http.Request) netip.Prefix {
	a, ok := clientAddr(r)
	if !ok {
		return netip.Prefix{}
	}
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// limited applies the per-client rate limit: 429 with Retry-After when the
// client's bucket is empty.
func (a *API) limited(next http.Handler) http.Handler {
	if a.limiter == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := a.limiter.allow(clientPrefix(r)); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			writeError(w, http.StatusTooManyRequests, "rate limited: too many requests from this client")
			return
		}
		next.ServeHTTP(w, r)
	})
}
