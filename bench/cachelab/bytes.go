package cachelab

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/miekg/dns"
)

// byteSample is one entry measured in Redis.
type byteSample struct {
	Label   string
	Wire    int   // packed message as stored
	KeyLen  int   // cache key
	Entry   int   // encoded entry: header, TTL offsets, message
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
		out = append(out, byteSample{Label: bs.label, Wire: len(it.Msg), KeyLen: len(it.Key), Entry: e.Size(),
			Usage: usage, Records: len(it.Offsets)})
	}
	return out, nil
}
