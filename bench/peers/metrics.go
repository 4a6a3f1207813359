package peers

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sources reads dnsd's count of answers by source (l1, redis, resolver,
// stale, ...) from its Prometheus metrics. Servers without metrics return
// nil.
func (s *Server) Sources(ctx context.Context) (map[string]float64, error) {
	if s.Metrics == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Metrics, nil)
	if err != nil {
		return nil, fmt.Errorf("peers: metrics: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("peers: metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("peers: metrics: %s", resp.Status)
	}
	return ParseSources(io.LimitReader(resp.Body, 16<<20))
}

// answersMetric is the counter of the lookup chain's answers by source.
const answersMetric = `shardns_lookup_answers_total{source="`

// ParseSources reads the answers-by-source counter from Prometheus text.
func ParseSources(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), answersMetric)
		if !ok {
			continue
		}
		src, val, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return nil, fmt.Errorf("peers: metrics: %q: %w", sc.Text(), err)
		}
		out[src] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("peers: metrics: %w", err)
	}
	return out, nil
}
