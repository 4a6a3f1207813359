package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/bench/peers"
	"github.com/shardns/shardns/bench/redisproc"
	"github.com/shardns/shardns/bench/report"
	"github.com/shardns/shardns/internal/testutil/dnsperf"
	"github.com/shardns/shardns/internal/testutil/fakenet"
)

// Row labels of the recursion workload.
const (
	nameRecUnbound = "Unbound (validator iterator)"
	nameRecShardns = "shardns all-in-one (dnsd -recurse)"
)

// recurseTimeout is how long dnsperf waits for a cold resolution before
// counting it lost: a miss takes several round trips from the root.
const recurseTimeout = 5 * time.Second

// coldTimeout bounds one question of the cold-start part.
const coldTimeout = 5 * time.Second

// recurseScale is the recursion workload's questions per round and the
// fixed rate dnsperf sends them at.
func (b *bench) recurseScale() (names, qps int) {
	if b.o.quick {
		return 2000, 500
	}
	return 10_000, 1000
}

// coldNames is how many wildcard names the cold-start part asks besides
// the table's.
func (b *bench) coldNames() int {
	if b.o.quick {
		return 100
	}
	return 500
}

// tableQuestions are the questions of fakenet's table that every resolver
// answers quickly: the rows whose only or first server never answers are
// left out, since their time is the resolvers' retry timers.
func tableQuestions() []string {
	var out []string
	for _, q := range fakenet.Questions() {
		if strings.HasPrefix(q.Name, "timeout") || q.Name == "lame-all" {
			continue
		}
		out = append(out, q.QName+" "+dns.TypeToString[q.QType])
	}
	return out
}

// wildcardQuestions are n A questions for names no resolver has seen,
// under the fake Internet's two wildcard zones (NSEC and NSEC3), tagged
// with tag so that every round asks names of its own.
func wildcardQuestions(tag string, n int) []string {
	out := make([]string, 0, n)
	for i := range n {
		zone := "wild.fake."
		if i%2 == 1 {
			zone = "wild.nsec3.fake."
		}
		out = append(out, fmt.Sprintf("h%d-%s.%s A", i, tag, zone))
	}
	return out
}

// recurseQuestions are one round's questions in dnsperf's format: the
// table's rows and n wildcard names, shuffled by seed.
func recurseQuestions(seed uint64, round, n int) []string {
	qs := append(tableQuestions(), wildcardQuestions(fmt.Sprintf("r%d", round), n)...)
	rng := rand.New(rand.NewPCG(seed, uint64(round)))
	rng.Shuffle(len(qs), func(i, j int) { qs[i], qs[j] = qs[j], qs[i] })
	return qs
}

// authCounts are queries the fake Internet's servers received, by tier.
type authCounts struct{ root, tld, other uint64 }

func (a authCounts) total() uint64 { return a.root + a.tld + a.other }

func (a authCounts) add(b authCounts) authCounts {
	return authCounts{a.root + b.root, a.tld + b.tld, a.other + b.other}
}

// splitCounts sorts c by tier: the root's server, the servers of
// one-label zones (TLDs), and every other server.
func splitCounts(servers []fakenet.Server, c fakenet.Counts) authCounts {
	tier := map[string]int{}
	for _, s := range servers {
		for _, z := range s.Zones {
			switch labels := dns.CountLabel(z); {
			case labels == 0:
				tier[s.Name] = 2
			case labels == 1 && tier[s.Name] < 1:
				tier[s.Name] = 1
			}
		}
	}
	var a authCounts
	for name, n := range c {
		switch tier[name] {
		case 2:
			a.root += n
		case 1:
			a.tld += n
		default:
			a.other += n
		}
	}
	return a
}

// recurseRow is one resolver's figures over every round.
type recurseRow struct {
	server             string
	sent, answered     int64
	auth               authCounts
	cpu                time.Duration
	lat                []time.Duration
	servfail, nxdomain int64
	err                string
}

// perSent is x per question sent.
func (r recurseRow) perSent(x uint64) float64 {
	if r.sent == 0 {
		return 0
	}
	return float64(x) / float64(r.sent)
}

// cpuPer is the resolver's CPU time per answered question.
func (r recurseRow) cpuPer() time.Duration {
	if r.answered == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.answered)
}

// coldRow is one resolverd's cold start: the same questions asked of a
// resolverd that just started.
type coldRow struct {
	label, procName string
	asked, answered int
	auth            authCounts
	err             string
}

// recurseParams describe the run for the section's text.
type recurseParams struct {
	rounds, names, table, qps, coldQuestions int
	timeout                                  time.Duration
}

// ratioOf formats a/b as "1.23×", or "–" when either is missing.
func ratioOf(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// recurseMarkdown is the workload's RESULTS.md section.
func recurseMarkdown(p recurseParams, rows []recurseRow, cold []coldRow) string {
	var b strings.Builder
	b.WriteString("## Misses resolved from the fake root: shardns against Unbound\n\n")
	fmt.Fprintf(&b, "The fake Internet of `internal/testutil/fakenet` (a root, TLDs and leaf zones signed at run time, each server an nsd on port 53 of a 127.a.b.x address) "+
		"answers both resolvers, each started with its root hints and trust anchor and validating: `dnsd -recurse` (all-in-one, in-process resolver) and Unbound "+
		"(`validator iterator`, configured as fakenet configures it). Each of %d rounds starts both afresh and sends each, with dnsperf at %d queries/s, "+
		"the same %d questions once: the %d rows of fakenet's table that no silent server slows down, and %d names never asked before under the wildcard zones "+
		"`wild.fake.` (NSEC) and `wild.nsec3.fake.` (NSEC3), shuffled; every question is a cache miss. Queries to the authoritatives are nsd's own counts "+
		"between the start of a resolver and the end of its run (a resolver waits for start on a name of a local zone, which sends none). "+
		"CPU is the resolver process's utime + stime over the run; p50 and p99 are over every answered question of every round; a question unanswered in %v is lost.\n\n",
		p.rounds, p.qps, p.names+p.table, p.table, p.names, p.timeout)
	b.WriteString("| resolver | questions | answered | SERVFAIL | NXDOMAIN | queries to authoritatives per question | root | TLDs | CPU µs/question | p50 µs | p99 µs |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	byName := map[string]recurseRow{}
	for _, r := range rows {
		byName[r.server] = r
		if r.err != "" {
			fmt.Fprintf(&b, "| %s | failed: %s |||||||||\n", r.server, oneLineText(r.err))
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %.2f | %.3f | %.3f | %s | %s | %s |\n", r.server, r.sent, r.answered, r.servfail, r.nxdomain,
			r.perSent(r.auth.total()), r.perSent(r.auth.root), r.perSent(r.auth.tld), report.Micros(r.cpuPer()),
			report.Micros(dnsperf.Percentile(r.lat, 50)), report.Micros(dnsperf.Percentile(r.lat, 99)))
	}
	s, sok := byName[nameRecShardns]
	u, uok := byName[nameRecUnbound]
	if sok && uok && s.err == "" && u.err == "" {
		fmt.Fprintf(&b, "| **shardns ÷ Unbound** | | | | | %s | %s | %s | %s | %s | %s |\n",
			ratioOf(s.perSent(s.auth.total()), u.perSent(u.auth.total())), ratioOf(s.perSent(s.auth.root), u.perSent(u.auth.root)),
			ratioOf(s.perSent(s.auth.tld), u.perSent(u.auth.tld)), ratioOf(float64(s.cpuPer()), float64(u.cpuPer())),
			ratioOf(float64(dnsperf.Percentile(s.lat, 50)), float64(dnsperf.Percentile(u.lat, 50))),
			ratioOf(float64(dnsperf.Percentile(s.lat, 99)), float64(dnsperf.Percentile(u.lat, 99))))
	}
	b.WriteString("\n")
	if len(cold) == 0 {
		return b.String()
	}
	b.WriteString("### Cold start of a second resolverd, with and without the shared resolver state\n\n")
	fmt.Fprintf(&b, "A first `resolverd -recurse -redis` (behind a `dnsd -resolver`) answers %d questions (the table's rows and wildcard names) one at a time, "+
		"filling its Redis with delegations, answers and server state; it stops. A second resolverd started on that Redis, then a third on an empty Redis, "+
		"each behind a fresh dnsd, answer the same questions: the queries each sends to the fake Internet's servers.\n\n", p.coldQuestions)
	b.WriteString("| resolverd | questions | answered | queries to the root | to TLDs | in all |\n|---|---:|---:|---:|---:|---:|\n")
	for _, c := range cold {
		if c.err != "" {
			fmt.Fprintf(&b, "| %s | failed: %s |||||\n", c.label, oneLineText(c.err))
			continue
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d |\n", c.label, c.asked, c.answered, c.auth.root, c.auth.tld, c.auth.total())
	}
	b.WriteString("\n")
	return b.String()
}

// Cold-start row labels.
const (
	coldFirst  = "first, on an empty Redis (fills it)"
	coldShared = "second, on the first one's Redis"
	coldEmpty  = "second, on an empty Redis"
)

// recurseWorkload runs the recursion workload and returns its section.
func (b *bench) recurseWorkload(ctx context.Context) (string, error) {
	host := fakenet.NewHost(b.log)
	defer host.Close()
	var n *fakenet.Net
	if err := host.Do(func(t fakenet.TB) { n = fakenet.Start(t, fakenet.Options{}) }); err != nil {
		return "", fmt.Errorf("bench: recurse: fake Internet: %w", err)
	}
	b.log.Info("fake Internet up", "prefix", n.Prefix+".0/24", "servers", len(n.Servers))
	zones := filepath.Join(b.env.Dir, "recurse-zones")
	if err := peers.WriteProbeZone(zones); err != nil {
		return "", err
	}
	names, qps := b.recurseScale()
	p := recurseParams{rounds: b.o.rounds, names: names, table: len(tableQuestions()), qps: qps, timeout: recurseTimeout}

	type recTarget struct {
		name  string
		start func(ctx context.Context) (*peers.Server, error)
	}
	targets := []recTarget{
		{nameRecShardns, func(ctx context.Context) (*peers.Server, error) {
			return peers.RecursiveShardns(ctx, b.env, peers.RecurseConfig{Name: nameRecShardns, Dnsd: b.bins.dnsd,
				RootHints: n.RootHints, TrustAnchor: n.TrustAnchor, Zones: zones})
		}},
		{nameRecUnbound, func(ctx context.Context) (*peers.Server, error) {
			var addr string
			if err := host.Do(func(t fakenet.TB) { addr = n.Spare(t).String() }); err != nil {
				return nil, fmt.Errorf("bench: recurse: %w", err)
			}
			dir := filepath.Join(b.env.Dir, "recurse-unbound-"+strings.ReplaceAll(addr, ".", "-"))
			return peers.RecursiveUnbound(ctx, b.env, b.tools.unbound, nameRecUnbound, dir, n.UnboundConfig(addr, dir, peers.UnboundProbeLines()...), addr)
		}},
	}
	var rows []*recurseRow
	var kept []recTarget
	for _, t := range targets {
		if len(b.filter([]target{{name: t.name}})) == 1 {
			kept = append(kept, t)
			rows = append(rows, &recurseRow{server: t.name})
		}
	}
	for round := range b.o.rounds {
		file := filepath.Join(b.env.Dir, fmt.Sprintf("recurse-%d.txt", round))
		if err := os.WriteFile(file, []byte(strings.Join(recurseQuestions(b.o.seed, round, names), "\n")+"\n"), 0o644); err != nil {
			return "", fmt.Errorf("bench: recurse: %w", err)
		}
		for i, t := range kept {
			if rows[i].err != "" {
				continue
			}
			b.log.Info("recursion run", "round", round+1, "server", t.name)
			if err := b.recurseRun(ctx, n, t.start, file, qps, rows[i]); err != nil {
				if ctx.Err() != nil {
					return "", ctx.Err()
				}
				rows[i].err = err.Error()
			}
		}
	}
	var cold []coldRow
	if len(b.filter([]target{{name: "shardns"}})) == 1 {
		qs := append(tableQuestions(), wildcardQuestions("cold", b.coldNames())...)
		p.coldQuestions = len(qs)
		var err error
		if cold, err = b.coldStart(ctx, host, n, zones, qs); err != nil {
			return "", err
		}
	}
	out := make([]recurseRow, len(rows))
	for i, r := range rows {
		out[i] = *r
	}
	return recurseMarkdown(p, out, cold), nil
}

// recurseRun starts a resolver, sends it file once at qps and adds what
// it cost to row.
func (b *bench) recurseRun(ctx context.Context, n *fakenet.Net, start func(context.Context) (*peers.Server, error), file string, qps int, row *recurseRow) error {
	before, err := n.Queries(ctx)
	if err != nil {
		return err
	}
	srv, err := start(ctx)
	if err != nil {
		return err
	}
	defer srv.Stop()
	cpu0, err := srv.CPU()
	if err != nil {
		return err
	}
	r := b.perfRun(srv, file)
	r.Once, r.MaxQPS, r.Verbose, r.Timeout = true, qps, true, recurseTimeout
	r.Duration = 30*time.Second + 2*time.Second*time.Duration(1+countLines(file)/qps)
	st, err := b.dnsperf(ctx, r)
	if err != nil {
		return err
	}
	cpu1, err := srv.CPU()
	if err != nil {
		return err
	}
	if err := srv.Alive(); err != nil {
		return err
	}
	after, err := n.Queries(ctx)
	if err != nil {
		return err
	}
	row.sent += st.Sent
	row.answered += st.Completed
	row.servfail += st.Rcodes["SERVFAIL"]
	row.nxdomain += st.Rcodes["NXDOMAIN"]
	row.cpu += cpu1 - cpu0
	row.lat = append(row.lat, st.Latencies...)
	row.auth = row.auth.add(splitCounts(n.Servers, after.Sub(before)))
	return nil
}

// countLines counts the lines of a small file, 0 when unreadable.
func countLines(file string) int {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	return strings.Count(string(data), "\n")
}

// coldStart measures what a second resolverd sends to the fake Internet
// with the first one's Redis and with an empty one.
func (b *bench) coldStart(ctx context.Context, host *fakenet.Host, n *fakenet.Net, zones string, qs []string) ([]coldRow, error) {
	redis := func(name string) (string, func(), error) {
		s, err := redisproc.Start(ctx, redisproc.Config{Group: b.env.Group, Name: name, Prefix: b.env.Prefix, Bin: b.tools.redis,
			Dir: filepath.Join(b.env.Dir, name)})
		if err != nil {
			return "", nil, fmt.Errorf("bench: recurse: %w", err)
		}
		return s.Addr, s.Proc.Stop, nil
	}
	shared, stopShared, err := redis("recurse-redis-shared")
	if err != nil {
		return nil, err
	}
	defer stopShared()
	empty, stopEmpty, err := redis("recurse-redis-empty")
	if err != nil {
		return nil, err
	}
	defer stopEmpty()
	var rows []coldRow
	for i, c := range []struct{ label, redis string }{{coldFirst, shared}, {coldShared, shared}, {coldEmpty, empty}} {
		b.log.Info("resolverd cold start", "resolverd", c.label)
		row := coldRow{label: c.label, procName: fmt.Sprintf("recurse-cold-%d", i+1), asked: len(qs)}
		if err := b.coldRun(ctx, n, zones, c.redis, qs, &row); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			row.err = err.Error()
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// coldRun starts resolverd -recurse -redis on redisAddr behind a dnsd,
// asks it qs one at a time and records what reached the fake Internet.
func (b *bench) coldRun(ctx context.Context, n *fakenet.Net, zones, redisAddr string, qs []string, row *coldRow) error {
	before, err := n.Queries(ctx)
	if err != nil {
		return err
	}
	srv, err := peers.RecursiveShardns(ctx, b.env, peers.RecurseConfig{Name: row.procName, Dnsd: b.bins.dnsd, Resolverd: b.bins.resolverd,
		RootHints: n.RootHints, TrustAnchor: n.TrustAnchor, Zones: zones, UseResolverd: true, Redis: redisAddr})
	if err != nil {
		return err
	}
	defer srv.Stop()
	c := &dns.Client{Timeout: coldTimeout}
	for _, line := range qs {
		name, typ, ok := strings.Cut(line, " ")
		if !ok {
			return fmt.Errorf("bench: recurse: question %q has no type", line)
		}
		m := new(dns.Msg)
		m.SetQuestion(name, dns.StringToType[typ])
		m.SetEdns0(1232, true)
		qctx, cancel := context.WithTimeout(ctx, coldTimeout)
		_, _, err := c.ExchangeContext(qctx, m, srv.Addr)
		cancel()
		if err == nil {
			row.answered++
		} else if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	if err := srv.Alive(); err != nil {
		return err
	}
	after, err := n.Queries(ctx)
	if err != nil {
		return err
	}
	row.auth = splitCounts(n.Servers, after.Sub(before))
	return nil
}

// recurseEstimate is roughly how long the workload takes.
func (b *bench) recurseEstimate() time.Duration {
	names, qps := b.recurseScale()
	per := time.Duration(names/qps+5) * time.Second
	return time.Duration(b.o.rounds)*2*per + 30*time.Second
}
