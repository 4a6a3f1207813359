// Package lookup is the query path every shardns frontend uses: a Chain
// built once, in Build, that reads the cache (Peek, for a batch of
// questions at once) and asks the steps below it for the rest. dnsd and
// cacheapi both answer through it, so a name looks the same over DNS and
// over HTTP.
package lookup

import (
	"context"
	"errors"
	"time"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
)

// Source says where an answer came from.
type Source string

// The sources of an answer, as the REST API and the metrics name them.
const (
	SourceL1       Source = "l1"
	SourceRedis    Source = "redis"
	SourceStale    Source = "stale"
	SourceResolver Source = "resolver"
)

// Result is the answer to one question: a stored answer, where it came from
// and the time it was read, so the caller can age its TTLs.
type Result struct {
	Entry  *cache.Entry
	Source Source
	Now    time.Time

	cacheable bool // set by the resolve step: the store step may write it
}

// ReplyOptions are the options of the reply made from r: its age, stale
// or not, and the Extended DNS Error the resolver gave with it
// (cache.Entry.EDE).
func (r *Result) ReplyOptions() dnsmsg.ReplyOptions {
	o := dnsmsg.ReplyOptions{Age: r.Age(), Stale: r.Stale()}
	if e := r.Entry.EDE; e != nil {
		o.EDE, o.Text = e.Code, e.Text
	}
	return o
}

// Stale reports whether the answer is past its TTL (served under RFC 8767).
func (r *Result) Stale() bool { return r.Source == SourceStale }

// Age is the whole seconds since the answer was stored, rounded up so that no
// reply shows a TTL longer than the entry has left.
func (r *Result) Age() uint32 {
	age := r.Entry.Age(r.Now)
	return uint32((age + time.Second - 1) / time.Second)
}

// Stored is the entry as the wire patcher wants it.
func (r *Result) Stored() dnsmsg.Stored {
	return dnsmsg.Stored{Msg: r.Entry.Msg, Offsets: r.Entry.Offsets}
}

// Handler answers one question: each step below the cache, and the Chain
// as a whole for a frontend that asks one question at a time (cacheapi).
type Handler interface {
	Lookup(ctx context.Context, q *dnsmsg.Query) (*Result, error)
}

// Resolver answers a query the cache could not: resolverd over gRPC
// (Remote), or the in-process resolver of the all-in-one dnsd
// (resolverd/resolve). q is a packed query (dnsmsg.Query.AppendUpstream);
// the answer is a packed message with q's ID and question, which becomes
// the caller's: the chain stores it in place (NewEntry). A DNS failure
// (NXDOMAIN, SERVFAIL) is an answer; an error means no answer was had.
type Resolver interface {
	Resolve(ctx context.Context, q []byte) ([]byte, error)
}

// Store is the cache as the chain sees it (cache.Layered).
type Store interface {
	Get(ctx context.Context, key string) (*cache.Entry, cache.Source, error)
	Set(ctx context.Context, key string, e *cache.Entry) error
}

// ErrResolver wraps every failure to get an answer from the resolver.
var ErrResolver = errors.New("lookup: resolver failed")

// ErrTimeout is wrapped when the client's budget ran out first.
var ErrTimeout = errors.New("lookup: no answer within the budget")
