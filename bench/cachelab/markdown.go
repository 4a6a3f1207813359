package cachelab

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// table renders a Markdown table.
func table(head []string, rows [][]string) string {
	var b strings.Builder
	b.WriteString("| " + strings.Join(head, " | ") + " |\n|")
	for range head {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, r := range rows {
		b.WriteString("| " + strings.Join(r, " | ") + " |\n")
	}
	return b.String()
}

func pct(f float64) string {
	v := f * 100
	switch {
	case v >= 10 || v == float64(int(v)):
		return strconv.FormatFloat(v, 'f', 0, 64) + "%"
	default:
		return strconv.FormatFloat(v, 'f', 1, 64) + "%"
	}
}

func ratio(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) }

func mb(b int64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 2, 64) + " MiB" }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func dur(d time.Duration) string {
	if d < time.Millisecond {
		return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 0, 64) + " µs"
	}
	return strconv.FormatFloat(ms(d), 'f', 2, 64) + " ms"
}

func cut(c bool) string {
	if c {
		return "*"
	}
	return ""
}

// markdown renders the report; plots are linked relative to outDir's
// parent.
func (r *results) markdown(outDir string) string {
	rel := filepath.ToSlash(filepath.Base(filepath.Clean(outDir)))
	img := func(alt, file string) string { return "![" + alt + "](" + rel + "/" + file + ")\n\n" }
	p := r.params
	var b strings.Builder
	b.WriteString("## The cache questions\n\n")
	src := "generated host names"
	if r.names > 0 {
		src = fmt.Sprintf("names from the zone (%d given)", r.names)
	}
	fmt.Fprintf(&b, "Key space: %d keys in the cache's key schema (`dns:{name.}:TYPE:IN`): A and AAAA of %s "+
		"(MX and TXT of one in eight), and %s of names that do not exist (NXDOMAIN). Each key's value is a real "+
		"answer built with miekg/dns and stored as the query path stores it (`dnsmsg.Prepare`, `cache.Entry`, "+
		"Redis expiry = TTL + the 24 h stale window), record TTLs from 20 s to 1 day, negative TTLs 60 s to 1 h. "+
		"Trace: Zipf, exponent %.1f, %d warm-up then %d measured requests, the same trace for every run. Each "+
		"request is a `Get` through `internal/cache`'s go-redis Ring and, on a miss, a `Set`, as the query path "+
		"does. Redis %s on loopback with the eviction settings of `deploy/redis/cache.conf` (maxmemory-samples 10, "+
		"lazy freeing); client and servers share this machine's cores. All five experiments took %s.\n\n",
		r.keys, src, pct(nxShare), p.zipfS, p.warm, p.measure, r.redisVersion, r.elapsed.Round(time.Second))
	r.mdPolicies(&b)
	b.WriteString(img("hit ratio against cache memory, by eviction policy", plotPolicies))
	r.mdPartitions(&b)
	b.WriteString(img("hit ratio and Get latency against shard count", plotPartitions))
	r.mdBalance(&b)
	b.WriteString(img("most loaded shard over the mean", plotBalance))
	r.mdMoves(&b)
	b.WriteString(img("share of keys moved when a shard joins", plotMoves))
	r.mdBytes(&b)
	b.WriteString(img("bytes per entry: wire and key against Redis MEMORY USAGE", plotBytes))
	b.WriteString("### Default eviction policy and shard count\n\n")
	b.WriteString(r.recommendation())
	b.WriteString("\n")
	return b.String()
}

func (r *results) mdPolicies(b *strings.Builder) {
	pr := r.policy
	b.WriteString("### Hit ratio against cache memory, by eviction policy\n\n")
	fmt.Fprintf(b, "Working set: the %d distinct keys the trace asks for add %s to Redis's used_memory when all "+
		"are stored (%.0f bytes a key). Cache memory is `maxmemory` less the empty server's used_memory with the "+
		"client's %d connections open (%s); connection buffers are held fixed (`DEBUG REPLYBUFFER RESIZING 0`) "+
		"so that they do not move in and out of a small budget. Hit ratio over the measured requests; one "+
		"server, %d requests in flight. The last row is the bound: the hits of a cache that never evicts.\n\n",
		pr.Distinct, mb(pr.WorkingSet), float64(pr.WorkingSet)/float64(max(pr.Distinct, 1)), r.params.workers,
		mb(pr.Baseline), r.params.workers)
	head := []string{"policy"}
	for _, pt := range pr.Points[pr.Policies[0]] {
		head = append(head, fmt.Sprintf("%s (%s)", pct(pt.Fraction), mb(pt.Budget)))
	}
	var rows [][]string
	anyCut := false
	for _, pol := range pr.Policies {
		row := []string{"`" + pol + "`"}
		for _, pt := range pr.Points[pol] {
			row = append(row, ratio(pt.Hit)+cut(pt.Cut))
			anyCut = anyCut || pt.Cut
		}
		rows = append(rows, row)
	}
	bound := []string{"no eviction"}
	for range pr.Points[pr.Policies[0]] {
		bound = append(bound, ratio(pr.Ideal))
	}
	rows = append(rows, bound)
	b.WriteString(table(head, rows))
	if anyCut {
		b.WriteString("\n\\* stopped at the run's time limit; the ratio is over the requests measured until then.\n")
	}
	b.WriteString("\n")
}

func (r *results) mdPartitions(b *strings.Builder) {
	pr := r.part
	b.WriteString("### Hit ratio and latency against the number of partitions\n\n")
	fmt.Fprintf(b, "The same trace over 1, 2, 4 and 8 Redis shards (go-redis Ring through `cache.NewRing`) whose "+
		"`maxmemory` budgets (as above) add up to the same %s (%s of the working set), `%s`. Latency is each `Get` as the "+
		"client sees it, %d requests in flight.\n\n", mb(pr.Budget), pct(r.params.partFraction), pr.Policy, pr.Workers)
	var rows [][]string
	for _, pt := range pr.Points {
		rows = append(rows, []string{strconv.Itoa(pt.Shards), ratio(pt.Hit) + cut(pt.Cut), dur(pt.P50), dur(pt.P90),
			dur(pt.P99), dur(pt.P999), strconv.FormatFloat(pt.Rate, 'f', 0, 64), strconv.FormatInt(pt.Evicted, 10),
			strconv.Itoa(pt.Errors)})
	}
	b.WriteString(table([]string{"shards", "hit ratio", "Get p50", "p90", "p99", "p99.9", "requests/s", "evicted keys", "errors"}, rows))
	b.WriteString("\n")
}

func (r *results) mdBalance(b *strings.Builder) {
	b.WriteString("### Key balance across shards\n\n")
	b.WriteString("Where go-redis Ring puts each key of the key space (`Redis.ShardFor`). The Ring hashes keys " +
		"against shard names, which dnsd takes from the addresses, so the balance depends on them: each row is " +
		"measured over several sets of shard addresses (rotations of the servers started), mean and worst set. " +
		"Requests weighs each key by how often the trace asks for it. For the first set every key was also " +
		"written and each shard's `DBSIZE` compared with the Ring's placement.\n\n")
	var rows [][]string
	for _, pt := range r.balance.Balance {
		match := "no"
		if pt.DBSizeMatch {
			match = "yes"
		}
		rows = append(rows, []string{strconv.Itoa(pt.Shards), strconv.Itoa(pt.Keys), strconv.Itoa(pt.Sets),
			ratio(pt.KeysMax), ratio(pt.KeysWorst), ratio(pt.TrafficMax), ratio(pt.TrafficWorst), match})
	}
	b.WriteString(table([]string{"shards", "keys", "address sets", "keys max/mean", "worst", "requests max/mean",
		"worst", "DBSIZE = placement"}, rows))
	b.WriteString("\n")
}

func (r *results) mdMoves(b *strings.Builder) {
	br := r.balance
	b.WriteString("### Keys that move when a shard joins\n\n")
	b.WriteString("Share of the key space whose shard changes from N to N+1 shards: go-redis Ring as " +
		"`internal/cache` configures it (rendezvous hashing of the `{name}` hash tag), asked with " +
		"`Redis.ShardFor`, against hash-mod-N partitioning (CRC-32 of the key, mod N).\n\n")
	var rows [][]string
	for _, m := range br.Moves {
		rows = append(rows, []string{fmt.Sprintf("%d → %d", m.From, m.From+1), pct3(m.Ring), pct3(m.RingExpected),
			pct3(m.ModN), pct3(m.ModNExpected)})
	}
	b.WriteString(table([]string{"shards", "Ring moved", "ideal 1/(N+1)", "mod N moved", "mod N expected N/(N+1)"}, rows))
	for _, m := range br.Moves {
		if m.From == br.VerifyFrom {
			fmt.Fprintf(b, "\nWritten for real: of the keys written through a %d-shard Ring, %s are not found "+
				"through a %d-shard Ring (the hash predicts %s).\n", m.From, pct3(br.Verified), m.From+1, pct3(m.Ring))
		}
	}
	b.WriteString("\n")
}

func pct3(f float64) string { return strconv.FormatFloat(f*100, 'f', 1, 64) + "%" }

func (r *results) mdBytes(b *strings.Builder) {
	br := r.bytes
	b.WriteString("### Redis bytes per cached entry\n\n")
	b.WriteString("Each answer stored through `Redis.Set` on an empty server, then `MEMORY USAGE key SAMPLES 0`. " +
		"The stored entry (`cache.Entry` version 2) is the packed message without its 12-byte DNS header and " +
		"question, both rebuilt from the key when read, after a header of 12 to 14 bytes in the usual case: " +
		"version, header flags and section counts (2 bytes), stored-at in milliseconds, TTL and the stale window " +
		"as varints. TTL offsets are found again by walking the records. Values of at most 44 bytes are kept by " +
		"Redis in one allocation with their object header (embstr).\n\n")
	var rows [][]string
	for _, s := range br.Samples {
		rows = append(rows, []string{s.Label, strconv.Itoa(s.Records), strconv.Itoa(s.Wire), strconv.Itoa(s.KeyLen),
			strconv.Itoa(s.Entry), strconv.FormatInt(s.Usage, 10),
			strconv.FormatFloat(float64(s.Usage)/float64(s.Wire+s.KeyLen), 'f', 2, 64)})
	}
	b.WriteString(table([]string{"answer", "records", "wire bytes", "key bytes", "stored entry", "MEMORY USAGE", "usage / (wire + key)"}, rows))
	if br.Keys > 0 && br.MeanWireKey > 0 {
		fmt.Fprintf(b, "\nOver the trace's %d distinct keys: wire plus key %.0f bytes on average; used_memory grows "+
			"by %.0f bytes per key stored (%.2f×), which also counts the expiry table and allocator rounding.\n",
			br.Keys, br.MeanWireKey, br.PerKeyUsed, br.PerKeyUsed/br.MeanWireKey)
	}
	if a := br.All; a.Keys > 0 && a.WireKey > 0 {
		wk := float64(a.WireKey) / float64(a.Keys)
		per := func(n int64) float64 { return float64(n) / float64(a.Keys) }
		ratio := func(n int64) float64 { return float64(n) / float64(a.WireKey) }
		meets := func(x float64) string {
			if x <= 1.3 {
				return "meets 1.3×"
			}
			return "above 1.3×"
		}
		fmt.Fprintf(b, "\nThe whole key space, %d keys, stored at once on an empty server (%d values of at most %d "+
			"bytes, %s), and held in an L1 (`cache.Memory`) as a Redis hit leaves them. Wire plus key: %.1f bytes a key.\n\n",
			a.Keys, a.Embedded, embstrMax, pct(float64(a.Embedded)/float64(a.Keys)), wk)
		l1 := float64(a.L1Heap) / float64(max(a.L1Entries, 1))
		rows := [][]string{
			{"stored key + value (STRLEN)", fmt.Sprintf("%.1f", per(a.Stored)), fmt.Sprintf("%.2f", ratio(a.Stored)), meets(ratio(a.Stored))},
			{"MEMORY USAGE", fmt.Sprintf("%.1f", per(a.Usage)), fmt.Sprintf("%.2f", ratio(a.Usage)), meets(ratio(a.Usage))},
			{"used_memory growth", fmt.Sprintf("%.1f", per(a.UsedDelta)), fmt.Sprintf("%.2f", ratio(a.UsedDelta)), meets(ratio(a.UsedDelta))},
			{"L1: Go heap in use after GC", fmt.Sprintf("%.1f", l1), fmt.Sprintf("%.2f", l1/wk), meets(l1 / wk)},
		}
		b.WriteString(table([]string{"bytes a key", "bytes", "over wire + key", "target"}, rows))
		var ok, over []string
		for _, row := range rows {
			if row[3] == meets(0) {
				ok = append(ok, row[0])
			} else {
				over = append(over, row[0])
			}
		}
		fmt.Fprintf(b, "\nWithin 1.3× of wire plus key: %s. Above it: %s. What Redis spends on each key beyond "+
			"its key and value (hash table entry, object header, allocator size classes, and in used_memory the "+
			"expiry table) and what the L1 spends beyond the message (Entry, TTL offsets, its list and map slots) "+
			"are costs of tens of bytes a key that the entry layout does not set.\n",
			orNone(ok), orNone(over))
	}
	b.WriteString("\n")
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
