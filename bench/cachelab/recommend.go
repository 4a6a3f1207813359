package cachelab

import (
	"fmt"
	"math"
	"runtime"
	"strings"
)

// shippedPolicy is the default of deploy/redis/cache.conf and DESIGN.md.
const shippedPolicy = "allkeys-lfu"

// Thresholds of the recommendation, stated in its text.
const (
	policyTie   = 0.005 // hit-ratio difference treated as a tie (half a point)
	shardHitTie = 0.01  // a shard count may cost at most one point of hit ratio
	shardBalMax = 1.10  // its busiest shard may hold at most 10% more keys than the mean
	shardReqMax = 1.5   // and take at most 1.5 times the mean request load
)

// meanUnder returns a policy's mean hit ratio over the budgets below the
// working set, where eviction happens.
func (pr *policyResult) meanUnder(pol string) float64 {
	sum, n := 0.0, 0
	for _, pt := range pr.Points[pol] {
		if pt.Fraction < 1 {
			sum += pt.Hit
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// bestPolicy returns the policy with the highest meanUnder.
func (pr *policyResult) bestPolicy() string {
	best := ""
	for _, pol := range pr.Policies {
		if best == "" || pr.meanUnder(pol) > pr.meanUnder(best) {
			best = pol
		}
	}
	return best
}

// lead returns the budget where a beats b by the most, and by how much.
func (pr *policyResult) lead(a, b string) (policyPoint, float64) {
	var at policyPoint
	most := math.Inf(-1)
	pb := pr.Points[b]
	for i, pt := range pr.Points[a] {
		if i < len(pb) && pt.Fraction < 1 && pt.Hit-pb[i].Hit > most {
			most, at = pt.Hit-pb[i].Hit, pt
		}
	}
	return at, most
}

func points(d float64) string { return fmt.Sprintf("%.1f points", d*100) }

// recommendation is the closing paragraph: the default eviction policy and
// shard count, with the numbers behind them.
func (r *results) recommendation() string {
	var b strings.Builder
	pr := r.policy
	best := pr.bestPolicy()
	var means []string
	for _, pol := range pr.Policies {
		means = append(means, fmt.Sprintf("`%s` %s", pol, ratio(pr.meanUnder(pol))))
	}
	fmt.Fprintf(&b, "**Eviction policy.** Averaged over the budgets below the working set, the hit ratios are %s "+
		"(no eviction would reach %s). ", strings.Join(means, ", "), ratio(pr.Ideal))
	shipped := pr.meanUnder(shippedPolicy)
	switch {
	case best == shippedPolicy || pr.meanUnder(best)-shipped < policyTie:
		fmt.Fprintf(&b, "This confirms `%s` as the default", shippedPolicy)
		if best != shippedPolicy {
			fmt.Fprintf(&b, " (`%s` is ahead by %s on average, within the %s we treat as a tie)", best,
				points(pr.meanUnder(best)-shipped), points(policyTie))
		}
		b.WriteString(": ")
		other := "allkeys-lru"
		if at, d := pr.lead(shippedPolicy, other); d > 0 {
			fmt.Fprintf(&b, "it beats `%s` by up to %s (at %s of the working set): "+
				"under LRU every one-off lookup of the Zipf tail pushes out an entry, popular or not, while under "+
				"LFU a new key starts with a low count and is the first to go. ", other, points(d), pct(at.Fraction))
		} else {
			fmt.Fprintf(&b, "it is never behind `%s` by more than %s. ", other, points(-d))
		}
	default:
		fmt.Fprintf(&b, "This does not confirm `%s`: `%s` hits %s more on average", shippedPolicy, best,
			points(pr.meanUnder(best)-shipped))
		if at, d := pr.lead(best, shippedPolicy); d > 0 {
			fmt.Fprintf(&b, ", up to %s at %s of the working set", points(d), pct(at.Fraction))
		}
		fmt.Fprintf(&b, "; the default should be `%s`. ", best)
	}
	if at, d := pr.lead(shippedPolicy, "volatile-ttl"); d > 0 {
		fmt.Fprintf(&b, "`volatile-ttl` evicts what expires soonest and so keeps whatever has the longest TTL left, "+
			"popular or not (TTL and popularity are independent in this trace): it trails `%s` by up to %s (at "+
			"%s)", shippedPolicy, points(d), pct(at.Fraction))
		if vt, rnd := pr.meanUnder("volatile-ttl"), pr.meanUnder("allkeys-random"); vt < rnd {
			fmt.Fprintf(&b, ", and on average it is below even random eviction (%s against %s)", ratio(vt), ratio(rnd))
		}
		b.WriteString(". ")
	}
	b.WriteString("\n\n")
	r.recommendShards(&b)
	return b.String()
}

func (r *results) recommendShards(b *strings.Builder) {
	pts := r.part.Points
	if len(pts) == 0 {
		return
	}
	one := pts[0]
	keysBal := map[int]float64{1: 1}
	reqBal := map[int]float64{1: 1}
	for _, bp := range r.balance.Balance {
		keysBal[bp.Shards] = bp.KeysMax
		reqBal[bp.Shards] = bp.TrafficMax
	}
	pick := one
	var spread []string
	hitMove := 0.0
	for _, pt := range pts {
		spread = append(spread, fmt.Sprintf("%d: %s, p50 %s, p99 %s", pt.Shards, ratio(pt.Hit), dur(pt.P50), dur(pt.P99)))
		hitMove = max(hitMove, math.Abs(pt.Hit-one.Hit))
		kb, kok := keysBal[pt.Shards]
		rb, rok := reqBal[pt.Shards]
		ok := one.Hit-pt.Hit <= shardHitTie && kok && kb <= shardBalMax && rok && rb <= shardReqMax
		if ok && pt.Shards > pick.Shards {
			pick = pt
		}
	}
	b.WriteString("**Shard count.** ")
	if hitMove <= shardHitTie {
		fmt.Fprintf(b, "At the same total memory the shard count moves the hit ratio by at most %s", points(hitMove))
	} else {
		fmt.Fprintf(b, "At the same total memory the hit ratio changes by up to %s with the shard count", points(hitMove))
	}
	fmt.Fprintf(b, " (shards: hit ratio, Get p50, p99 — %s). ", strings.Join(spread, "; "))
	var reqs []string
	for _, bp := range r.balance.Balance {
		reqs = append(reqs, fmt.Sprintf("%s at %d", ratio(bp.TrafficMax), bp.Shards))
	}
	fmt.Fprintf(b, "More shards buy a smaller failure domain (a dead shard costs 1/N of the hits) and fewer keys "+
		"moved when one joins (1/(N+1)), but the busiest shard's share of the requests tends to grow with N, "+
		"because each of the hottest names lives on one shard (busiest over mean, averaged over address sets: %s); past a point the hottest names, "+
		"not the shard count, bound the throughput. So we take the most shards that keep the hit ratio within "+
		"%s of one instance, the busiest shard within %.0f%% of the mean in keys and within %.1f× of the mean "+
		"in requests (two thirds of the shards' combined capacity usable). Latency does not enter the choice: "+
		"%d redis-servers and the client share %d cores here, so the latency columns measure the scheduler more "+
		"than the partitioning. ", strings.Join(reqs, ", "), points(shardHitTie), (shardBalMax-1)*100, shardReqMax,
		pts[len(pts)-1].Shards, runtime.NumCPU())
	if pick.Shards == 1 {
		b.WriteString("No partitioned setup meets that here, so the measurement argues for **one shard**; " +
			"partition across machines only for memory or availability.")
	} else {
		fmt.Fprintf(b, "That is **%d shards**: a dead shard costs about %s of the hits", pick.Shards,
			pct(1/float64(pick.Shards)))
		for _, m := range r.balance.Moves {
			if m.From == pick.Shards {
				fmt.Fprintf(b, ", and adding one more moves %s of the keys with the Ring, where hash mod N would "+
					"move %s", pct3(m.Ring), pct3(m.ModN))
			}
		}
		b.WriteString(".")
		if pick.Shards == pts[len(pts)-1].Shards {
			b.WriteString(" (It is the most measured: these criteria do not rule out more.)")
		}
	}
	b.WriteString(" In shardns the L1 in front of Redis answers the hottest names, so Redis sees a flatter stream " +
		"than this replay and more shards may pay off there; the bound above is the cautious one.\n")
}
