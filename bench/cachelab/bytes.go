package cachelab

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/redis/go-redis/v9"

	"github.com/shardns/shardns/internal/cache"
)

// byteSample is one entry measured in Redis.
type byteSample struct {
	Label   string
	Wire    int   // packed message as stored
	KeyLen  int   // cache key
	Entry   int   // the value stored: cache.Entry.Encode
	Usage   int64 // MEMORY USAGE of the key
	Records int   // resource records in the message
}

// bytesResult is experiment 5.
type bytesResult struct {
	Samples []byteSample
	// Over the trace's working set (experiment 1): mean wire plus key
	// length, and used_memory per key with every key stored.
	MeanWireKey float64
	PerKeyUsed  float64
	Keys        int
	// Over the whole key space, every key stored at once.
	All aggregate
}

// aggregate is the whole key space stored in one empty Redis and in one
// L1 (cache.Memory), against the wire messages and keys it holds.
type aggregate struct {
	Keys      int
	WireKey   int64 // sum of wire message + key length
	Stored    int64 // sum of key + value length (STRLEN)
	Embedded  int   // values of at most 44 bytes (Redis embstr)
	Usage     int64 // sum of MEMORY USAGE
	UsedDelta int64 // used_memory with every key stored, less the empty server's
	// The L1 holding the same entries, decoded from their Redis values as
	// a Redis hit leaves them: runtime heap in use after GC, less the
	// empty L1's.
	L1Entries int
	L1Heap    int64
}

// byteSpecs are the answers measured one by one.
var byteSpecs = []struct {
	label string
	spec  answerSpec
}{
	{"A, 1 record", answerSpec{Name: "www.example.com.", Qtype: dns.TypeA, Kind: kindA, Records: 1, TTL: 300}},
	{"A, 4 records", answerSpec{Name: "pool.ntp.example.org.", Qtype: dns.TypeA, Kind: kindA, Records: 4, TTL: 150}},
	{"AAAA, 2 records", answerSpec{Name: "www.example.com.", Qtype: dns.TypeAAAA, Kind: kindAAAA, Records: 2, TTL: 300}},
	{"CNAME + 2 A", answerSpec{Name: "www.shop.example.net.", Qtype: dns.TypeA, Kind: kindCNAME, Records: 2, TTL: 60}},
	{"MX, 3 records", answerSpec{Name: "example.com.", Qtype: dns.TypeMX, Kind: kindMX, Records: 3, TTL: 3600}},
	{"TXT, SPF + 2 tokens", answerSpec{Name: "example.com.", Qtype: dns.TypeTXT, Kind: kindTXT, Records: 3, TTL: 3600}},
	{"TXT, DKIM 2048-bit", answerSpec{Name: "selector1._domainkey.example.com.", Qtype: dns.TypeTXT, Kind: kindTXT, Records: 1, TTL: 3600, BigTXT: true}},
	{"NXDOMAIN + SOA", answerSpec{Name: "no-such-host.example.com.", Qtype: dns.TypeA, Kind: kindNXDOMAIN, TTL: 900}},
	{"NODATA + SOA", answerSpec{Name: "www.example.com.", Qtype: dns.TypeMX, Kind: kindNODATA, TTL: 900}},
}

// runBytes is experiment 5: each sample answer stored through the Ring on
// an empty server, then MEMORY USAGE asked for its key.
func runBytes(ctx context.Context, s *redisServer) ([]byteSample, error) {
	if err := s.reset(ctx, 0, ""); err != nil {
		return nil, err
	}
	r, err := newRing([]string{s.Addr}, 0)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []byteSample
	for i, bs := range byteSpecs {
		rng := rand.New(rand.NewPCG(uint64(i), 42))
		it, err := buildItem(bs.spec, rng)
		if err != nil {
			return nil, err
		}
		e := entryFor(&it, time.Now())
		if err := r.Set(ctx, it.Key, e); err != nil {
			return nil, fmt.Errorf("cachelab: bytes: %w", err)
		}
		cctx, cancel := context.WithTimeout(ctx, adminTimeout)
		usage, err := s.admin.MemoryUsage(cctx, it.Key, 0).Result()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("cachelab: memory usage %s: %w", it.Key, err)
		}
		out = append(out, byteSample{Label: bs.label, Wire: len(it.Msg), KeyLen: len(it.Key), Entry: len(e.Encode()),
			Usage: usage, Records: len(it.Offsets)})
	}
	return out, nil
}

// embstrMax is the longest string value Redis keeps in one allocation
// with its object header (OBJ_ENCODING_EMBSTR).
const embstrMax = 44

// runAggregate stores every item on an empty server, as the query path
// would, and measures the bytes: the values' lengths, MEMORY USAGE of
// every key and used_memory. Then it fills an L1 with the same entries
// and measures the Go heap they take.
func runAggregate(ctx context.Context, s *redisServer, items []item, workers int) (aggregate, error) {
	a := aggregate{Keys: len(items)}
	for _, it := range items {
		a.WireKey += int64(len(it.Msg) + len(it.Key))
	}
	r, err := newRing([]string{s.Addr}, workers)
	if err != nil {
		return a, err
	}
	defer r.Close()
	bases, err := bound(ctx, r, []*redisServer{s}, workers, 0, "")
	if err != nil {
		return a, err
	}
	if err := storeAll(ctx, r, items, workers); err != nil {
		return a, fmt.Errorf("cachelab: aggregate: %w", err)
	}
	full, err := s.usedMemory(ctx)
	if err != nil {
		return a, err
	}
	a.UsedDelta = full - bases[0]
	const batch = 1000
	for lo := 0; lo < len(items); lo += batch {
		hi := min(lo+batch, len(items))
		cctx, cancel := context.WithTimeout(ctx, adminTimeout)
		var usage []*redis.IntCmd
		var strlen []*redis.IntCmd
		_, err := s.admin.Pipelined(cctx, func(p redis.Pipeliner) error {
			for _, it := range items[lo:hi] {
				usage = append(usage, p.MemoryUsage(cctx, it.Key, 0))
				strlen = append(strlen, p.StrLen(cctx, it.Key))
			}
			return nil
		})
		cancel()
		if err != nil {
			return a, fmt.Errorf("cachelab: memory usage: %w", err)
		}
		for i, it := range items[lo:hi] {
			n := strlen[i].Val()
			if n == 0 {
				return a, fmt.Errorf("cachelab: aggregate: %s not stored", it.Key)
			}
			a.Stored += int64(len(it.Key)) + n
			a.Usage += usage[i].Val()
			if n <= embstrMax {
				a.Embedded++
			}
		}
	}
	a.L1Entries, a.L1Heap, err = l1Heap(ctx, items)
	return a, err
}

// l1Heap fills an L1 with items' entries, each decoded from its encoded
// value under a key of its own (as a Redis hit stores it in the L1), and
// returns the entries held and the heap in use they add after GC.
func l1Heap(ctx context.Context, items []item) (int, int64, error) {
	now := time.Now()
	m := cache.NewMemory(cache.MemoryConfig{MaxEntries: 4 * len(items), MaxBytes: 1 << 40})
	heapInUse := func() int64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapInuse)
	}
	before := heapInUse()
	for i := range items {
		key := strings.Clone(items[i].Key)
		e, err := cache.Decode(key, entryFor(&items[i], now).Encode())
		if err != nil {
			return 0, 0, fmt.Errorf("cachelab: l1: %w", err)
		}
		if err := m.Set(ctx, key, e); err != nil {
			return 0, 0, fmt.Errorf("cachelab: l1: %w", err)
		}
	}
	after := heapInUse()
	n := m.Len()
	runtime.KeepAlive(m)
	if n != len(items) {
		return 0, 0, fmt.Errorf("cachelab: l1 holds %d of %d entries", n, len(items))
	}
	return n, after - before, nil
}
