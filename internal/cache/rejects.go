package cache

import (
	"errors"
	"hash/maphash"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// rejectLogSlots bounds the memory that remembers which keys' rejections
// were logged: one slot per key hash, a later key taking over its slot.
// A key is logged again only after others have taken its slot, so the log
// says what is wrong, and where, without a line per query.
const rejectLogSlots = 4096

// rejects counts and logs the entries read from Redis that Decode refused.
type rejects struct {
	total  *prometheus.CounterVec
	counts map[string]prometheus.Counter // by reason, looked up once
	log    *slog.Logger

	seed   maphash.Seed
	mu     sync.Mutex
	logged [rejectLogSlots]uint64 // hash|1 of the key last logged in each slot
}

func newRejects(reg prometheus.Registerer, log *slog.Logger) *rejects {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	total := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "shardns", Subsystem: "cache", Name: "rejected_entries_total",
		Help: "Entries read from Redis and refused as misses, by reason: version (a layout this process does not trust), " +
			"malformed (does not parse), question (not the answer to its key's question), header (not a cached answer's flags or RCODE).",
	}, []string{"reason"})
	if reg != nil {
		if err := reg.Register(total); err != nil {
			// A second tier of the same process on the same registry
			// counts into the first one's series.
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				panic(err)
			}
			total = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	r := &rejects{total: total, counts: make(map[string]prometheus.Counter, len(rejectReasons)), log: log, seed: maphash.MakeSeed()}
	for _, reason := range rejectReasons {
		r.counts[reason] = total.WithLabelValues(reason)
	}
	return r
}

// note counts the refusal of the entry under key and logs it, with the
// shard that held it (shard is called only then), unless this key's was
// logged recently.
func (r *rejects) note(key string, err error, shard func() string) {
	reason := RejectMalformed
	var ce *CorruptError
	if errors.As(err, &ce) {
		reason = ce.Reason
	}
	if c, ok := r.counts[reason]; ok {
		c.Inc()
	} else {
		r.total.WithLabelValues(reason).Inc()
	}
	h := maphash.String(r.seed, key) | 1
	slot := &r.logged[h%rejectLogSlots]
	r.mu.Lock()
	fresh := *slot != h
	*slot = h
	r.mu.Unlock()
	if fresh {
		r.log.Warn("cache entry from Redis refused, served as a miss; repeats for this key are counted, not logged",
			"key", key, "shard", shard(), "reason", reason, "err", err)
	}
}
