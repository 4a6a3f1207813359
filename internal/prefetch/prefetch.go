// Package prefetch refreshes the fleet's popular cache entries before they
// expire, through the work queue. Every frontend counts its cache hits per
// entry and adds them up in the queue's Redis once a second (Counter); one
// scheduler at a time, chosen by a lease in Redis, enqueues each entry that
// was hit often enough and has reached its refresh time (see
// cache.Entry.RefreshAt) as one refresh task (Scheduler); the queue's
// workers re-resolve it and store the fresh answer, so popular names never
// miss.
//
// Keys, next to the queue's own (queue <q>):
//
//	q:{<q>}:hot:hits   sorted set: cache key → hits on its current entry
//	q:{<q>}:hot:due    sorted set: cache key → its entry's refresh time
//	                   (cache.Entry.RefreshAt, Unix ms)
//	q:{<q>}:scheduler  the scheduler's lease: its ID, with an expiry
package prefetch

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// keys of one queue's prefetch state.
type keys struct{ hits, due, lease string }

func keysFor(queueName string) keys {
	p := "q:{" + queueName + "}:"
	return keys{hits: p + "hot:hits", due: p + "hot:due", lease: p + "scheduler"}
}

// taskID names the refresh of one version of an entry (its due time), so
// the same refresh is never queued twice, whoever asks.
func taskID(key string, dueMs int64) string {
	sum := sha256.Sum256([]byte(key + "\x00" + strconv.FormatInt(dueMs, 10)))
	return "r-" + hex.EncodeToString(sum[:10])
}
