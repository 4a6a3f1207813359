package peers

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Scrape reads the Prometheus metrics served at url.
func Scrape(ctx context.Context, url string) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("peers: metrics: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("peers: metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("peers: metrics %s: %s", url, resp.Status)
	}
	return parseText(io.LimitReader(resp.Body, 16<<20))
}

func parseText(r io.Reader) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("peers: metrics: %w", err)
	}
	return fams, nil
}

// Sources reads dnsd's count of answers by source (l1, redis, resolver,
// stale, ...) from its Prometheus metrics. Servers without metrics return
// nil.
func (s *Server) Sources(ctx context.Context) (map[string]float64, error) {
	if s.Metrics == "" {
		return nil, nil
	}
	fams, err := Scrape(ctx, s.Metrics)
	if err != nil {
		return nil, err
	}
	return sourcesOf(fams), nil
}

// answersMetric is the counter of the lookup chain's answers by source.
const answersMetric = "shardns_lookup_answers_total"

// ParseSources reads the answers-by-source counter from Prometheus text.
func ParseSources(r io.Reader) (map[string]float64, error) {
	fams, err := parseText(r)
	if err != nil {
		return nil, err
	}
	return sourcesOf(fams), nil
}

func sourcesOf(fams map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, m := range fams[answersMetric].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "source" {
				out[l.GetValue()] = value(m)
			}
		}
	}
	return out
}

// Values reads the metrics named, each a single unlabelled sample; every
// name must be there.
func Values(fams map[string]*dto.MetricFamily, names ...string) (map[string]float64, error) {
	out := make(map[string]float64, len(names))
	for _, n := range names {
		ms := fams[n].GetMetric()
		if len(ms) != 1 {
			return nil, fmt.Errorf("peers: metric %s: %d samples, want 1", n, len(ms))
		}
		out[n] = value(ms[0])
	}
	return out, nil
}

// ParseValues is Values over Prometheus text.
func ParseValues(r io.Reader, names ...string) (map[string]float64, error) {
	fams, err := parseText(r)
	if err != nil {
		return nil, err
	}
	return Values(fams, names...)
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	}
	return m.GetUntyped().GetValue()
}
