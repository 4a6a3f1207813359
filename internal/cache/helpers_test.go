package cache

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/shardns/shardns/internal/dnsmsg"
)

func TestMain(m *testing.M) {
	// After a shard refuses PoolSize dials in a row, go-redis probes it from
	// a goroutine that sleeps a second between dials and only notices the
	// pool was closed when it wakes: it ends by itself, up to 1s after Close.
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"),
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"))
}

// fakeClock is a settable clock for TTL tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testEntry returns an entry stored at now, fresh for ttl and servable
// until now+stale, whose message has msgLen bytes (at least 16) and one
// TTL offset per 16 bytes after the header.
func testEntry(now time.Time, ttl, stale time.Duration, msgLen int) *Entry {
	msgLen = max(msgLen, 16)
	msg := make([]byte, msgLen)
	for i := range msg {
		msg[i] = byte(i)
	}
	var offs []uint16
	for o := 12; o+4 <= msgLen; o += 16 {
		offs = append(offs, uint16(o))
	}
	return &Entry{
		StoredAt:   now.Truncate(time.Millisecond),
		TTL:        uint32(ttl / time.Second),
		StaleUntil: now.Add(stale).Truncate(time.Millisecond),
		Offsets:    offs,
		Msg:        msg,
	}
}

// sameEntry reports how a differs from b, or "" if they are equal as
// encoded (times at millisecond precision).
func sameEntry(a, b *Entry) string {
	switch {
	case a == nil || b == nil:
		if a != b {
			return "one entry is nil"
		}
	case !a.StoredAt.Equal(b.StoredAt):
		return "StoredAt " + a.StoredAt.String() + " != " + b.StoredAt.String()
	case a.TTL != b.TTL:
		return "TTL differs"
	case !a.StaleUntil.Equal(b.StaleUntil):
		return "StaleUntil " + a.StaleUntil.String() + " != " + b.StaleUntil.String()
	case len(a.Offsets) != len(b.Offsets):
		return "Offsets differ in length"
	case !bytes.Equal(a.Msg, b.Msg):
		return "Msg differs"
	default:
		for i := range a.Offsets {
			if a.Offsets[i] != b.Offsets[i] {
				return "Offsets differ"
			}
		}
	}
	return ""
}

// keyed returns e as the answer to key's question, which Redis's reads
// take under key: a real message with one TXT record that spells key (so
// a test can tell whose value a Get returned), padded to about the length
// of e's message, with e's times. For a string that is not a cache key,
// which no read takes, it returns e.
func keyed(key string, e *Entry) *Entry {
	q, err := dnsmsg.ParseKey(key)
	if err != nil {
		return e
	}
	m := new(dns.Msg)
	m.SetQuestion(q.Name, q.Type)
	m.Question[0].Qclass = q.Class
	m.Response, m.RecursionAvailable = true, true
	txt := []string{key}
	if pad := len(e.Msg) - 12 - len(q.Name) - 4 - 12 - len(key) - 1; pad > 0 {
		txt = append(txt, strings.Repeat("x", min(pad, 255)))
	}
	m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: q.Class, Ttl: e.TTL}, Txt: txt}}
	st, err := dnsmsg.Prepare(m, e.TTL, 0, true)
	if err != nil {
		panic(fmt.Sprintf("keyed(%q): %v", key, err))
	}
	c := *e
	c.Msg, c.Offsets = st.Msg, st.Offsets
	return &c
}
