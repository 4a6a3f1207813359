package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/testutil/freeport"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// dashboard is the part of a Grafana dashboard the test reads.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int             `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Datasource json.RawMessage `json:"datasource"`
	GridPos    gridPos         `json:"gridPos"`
	Targets    []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's panels
}

// gridPos is where a panel sits on Grafana's grid, 24 columns wide.
type gridPos struct {
	H, W, X, Y int
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "grafana", "shardns.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("shardns.json: %v", err)
	}
	return d
}

// exprs returns every PromQL expression of the dashboard: panel targets and
// template variable queries.
func (d dashboard) exprs() []string {
	var out []string
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out = append(out, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		switch q := v.Query.(type) {
		case string:
			if v.Type == "query" {
				out = append(out, q)
			}
		case map[string]any:
			if s, ok := q["query"].(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}

// TestDashboardLayout checks the panels fit Grafana's 24-column grid, come
// in the file in the order they show, and do not overlap.
func TestDashboardLayout(t *testing.T) {
	ps := readDashboard(t).Panels
	for i, p := range ps {
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("panel %d %q: gridPos %+v off the grid", p.ID, p.Title, g)
		}
		if p.Type == "row" && (g.X != 0 || g.W != 24 || g.H != 1) {
			t.Errorf("row %d %q: gridPos %+v, want the full width and height 1", p.ID, p.Title, g)
		}
		if i > 0 && g.Y < ps[i-1].GridPos.Y {
			t.Errorf("panel %d %q at y %d comes after panel %d at y %d", p.ID, p.Title, g.Y, ps[i-1].ID, ps[i-1].GridPos.Y)
		}
		for _, q := range ps[:i] {
			h := q.GridPos
			if g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
				t.Errorf("panels %d %q and %d %q overlap: %+v, %+v", q.ID, q.Title, p.ID, p.Title, h, g)
			}
		}
	}
}

var (
	promIdent   = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promStrings = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
)

// metricNames returns the metric names an expression reads: identifiers
// with the prefix of our metrics or the Go client's (shardns_, process_,
// go_), and any identifier used as a selector (followed by '{'). Label
// values in quotes count only as alternatives of a __name__ matcher.
func metricNames(expr string) []string {
	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`__name__\s*=~?\s*"([^"]*)"`).FindAllStringSubmatch(expr, -1) {
		for _, n := range strings.Split(m[1], "|") {
			seen[n] = true
		}
	}
	bare := promStrings.ReplaceAllString(expr, `""`)
	for _, loc := range promIdent.FindAllStringIndex(bare, -1) {
		id := bare[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsAny(bare[loc[0]-1:loc[0]], "$0123456789.") {
			continue // $variable, or inside a number or duration
		}
		selector := loc[1] < len(bare) && bare[loc[1]] == '{'
		if selector && (id == "by" || id == "without") {
			continue
		}
		if selector || strings.HasPrefix(id, "shardns_") || strings.HasPrefix(id, "process_") || strings.HasPrefix(id, "go_") {
			seen[id] = true
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (source) (rate(shardns_lookup_answers_total{job=~"$job",source=~"l1|redis"}[$__rate_interval]))`: {"shardns_lookup_answers_total"},
		`histogram_quantile(0.99, sum by (le) (rate(shardns_x_seconds_bucket[5m]))) / up{job="a"}`:               {"shardns_x_seconds_bucket", "up"},
		`label_values({__name__=~"shardns_a_total|shardns_b_total"}, job)`:                                       {"shardns_a_total", "shardns_b_total"},
		`go_goroutines + process_open_fds`: {"go_goroutines", "process_open_fds"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%s) = %v, want %v", expr, got, want)
		}
	}
}

// scrape returns the names of every sample /metrics at addr shows.
func scrape(t *testing.T, addr string) map[string]bool {
	t.Helper()
	names, err := sampleNames(addr)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// sampleNames returns the names of every sample /metrics at addr shows.
func sampleNames(addr string) (map[string]bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("scrape %s: %s\n%s", addr, resp.Status, body)
	}
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	return names, nil
}

// freeAddr is a 127.0.0.1 address free for UDP and TCP.
func freeAddr(t *testing.T) string {
	t.Helper()
	p, err := freeport.UDPTCP()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
}

// ask sends one query to dnsd and returns the reply.
func ask(network, addr, name string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, qtype)
	c := &dns.Client{Net: network, Timeout: 3 * time.Second}
	r, _, err := c.Exchange(q, addr)
	return r, err
}

// TestDashboardMetricsExist runs the fleet's metric sources for real
// (resolverd with a zone, a dead loopback upstream, one queue worker and the
// prefetch scheduler; dnsd in front of it with a dead Redis shard, counting
// hits on the same queue Redis), drives every path the dashboard plots,
// scrapes both /metrics and checks every metric the dashboard reads is one
// they export.
func TestDashboardMetricsExist(t *testing.T) {
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 {
		t.Errorf("dashboard lacks uid, title or schemaVersion: %q %q %d", d.UID, d.Title, d.SchemaVersion)
	}
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel id %d used twice", p.ID)
			}
			ids[p.ID] = true
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			if p.Type != "row" && !strings.Contains(string(p.Datasource), "${datasource}") {
				t.Errorf("panel %q does not use the $datasource variable: %s", p.Title, p.Datasource)
			}
			for _, tg := range p.Targets {
				if strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") || strings.Count(tg.Expr, "{") != strings.Count(tg.Expr, "}") {
					t.Errorf("panel %q: unbalanced expression %s", p.Title, tg.Expr)
				}
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)

	zones := testZones(t)
	deadUpstream, deadRedis := freeAddr(t), freeAddr(t) // nothing listens there
	queueRedis, cacheRedis := redistest.Start(t), redistest.Start(t)
	resolver, resolverMetrics := freeAddr(t), freeAddr(t)
	dnsAddr, dnsMetrics := freeAddr(t), freeAddr(t)
	rd := startDaemon(t, "resolverd", "-listen", resolver, "-zones", zones, "-upstream", deadUpstream,
		"-metrics", resolverMetrics, "-queue-redis", queueRedis.Addr, "-workers", "1", "-redis", cacheRedis.Addr)
	// resolverd serves /metrics once it listens for gRPC, and its workers
	// register theirs once they run. Waiting for both keeps dnsd's first
	// question from failing (and that failure from being cached).
	waitFor(t, rd, "queue worker metrics", func() error {
		names, err := sampleNames(resolverMetrics)
		if err != nil {
			return err
		}
		if !names["shardns_queue_reaped_total"] {
			return errors.New("no shardns_queue_reaped_total")
		}
		return nil
	})
	dd := startDaemon(t, "dnsd", "-listen", dnsAddr, "-resolver", resolver, "-redis", deadRedis,
		"-queue-redis", queueRedis.Addr, "-metrics", dnsMetrics)
	waitFor(t, dd, "an answer from the zone", func() error {
		r, err := ask("udp", dnsAddr, "www.example.test.", dns.TypeA)
		if err != nil {
			return err
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			return fmt.Errorf("reply %s", r)
		}
		return nil
	})
	// A hit, a negative answer, a name forwarded to the dead upstream, one
	// over TCP, and a message too short to answer.
	for _, q := range []struct {
		network, name string
		rcode         int
	}{
		{"udp", "www.example.test.", dns.RcodeSuccess},
		{"udp", "nope.example.test.", dns.RcodeNameError},
		{"udp", "www.example.com.", dns.RcodeServerFailure},
		{"tcp", "www.example.test.", dns.RcodeSuccess},
	} {
		r, err := ask(q.network, dnsAddr, q.name, dns.TypeA)
		if err != nil {
			t.Fatalf("%s %s: %v", q.network, q.name, err)
		}
		if r.Rcode != q.rcode {
			t.Errorf("%s %s: %s, want %s", q.network, q.name, dns.RcodeToString[r.Rcode], dns.RcodeToString[q.rcode])
		}
	}
	conn, err := net.Dial("udp", dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte{0, 1, 2})
	conn.Close()

	scraped := scrape(t, resolverMetrics)
	// With resolverd gone, a new name fails: the failure metrics appear.
	rd.Stop(t)
	if r, err := ask("udp", dnsAddr, "gone.example.test.", dns.TypeA); err != nil || r.Rcode != dns.RcodeServerFailure {
		t.Errorf("with resolverd stopped: %v, %v; want SERVFAIL", r, err)
	}
	for n := range scrape(t, dnsMetrics) {
		scraped[n] = true
	}
	// The shards' own numbers come from a frontend whose shard is up: a
	// second dnsd, all-in-one, over the live cache Redis.
	liveAddr, liveMetrics := freeAddr(t), freeAddr(t)
	live := startDaemon(t, "dnsd", "-listen", liveAddr, "-zones", zones, "-upstream", deadUpstream,
		"-redis", cacheRedis.Addr, "-metrics", liveMetrics)
	waitFor(t, live, "the shard's numbers", func() error {
		names, err := sampleNames(liveMetrics)
		if err != nil {
			return err
		}
		if !names["shardns_redis_shard_keys"] {
			return errors.New("no shardns_redis_shard_keys")
		}
		for n := range names {
			scraped[n] = true
		}
		return nil
	})

	used := map[string]bool{}
	for _, e := range d.exprs() {
		for _, n := range metricNames(e) {
			used[n] = true
		}
	}
	if len(used) < 10 {
		t.Errorf("the dashboard reads only %v", used)
	}
	for n := range used {
		if !scraped[n] {
			t.Errorf("the dashboard reads %s, which neither dnsd nor resolverd exports", n)
		}
	}
}
