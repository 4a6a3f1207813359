// Package procmetrics is the Prometheus registry each daemon starts from:
// the Go runtime's metrics, with the live heap (the heap marked at the
// last collection, which the go_memstats_ series lack), the process's
// CPU, memory and descriptors, and which build of shardns runs.
package procmetrics

import (
	"regexp"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/shardns/shardns/internal/buildinfo"
)

// Registry returns a new registry holding the Go and process collectors
// and shardns_build_info. The live heap is go_gc_heap_live_bytes.
func Registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	live := collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)}
	reg.MustRegister(
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(live)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		BuildInfo(buildinfo.Read()),
	)
	return reg
}

// BuildInfo is the gauge shardns_build_info{version,revision,goversion},
// always 1, of the build in: join it on its labels to see which build
// each instance runs.
func BuildInfo(in buildinfo.Info) prometheus.Collector {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "shardns_build_info",
		Help: "Always 1; the labels say which build of shardns runs: module version, VCS revision, Go version.",
	}, []string{"version", "revision", "goversion"})
	g.WithLabelValues(in.Version, in.Revision, in.GoVersion).Set(1)
	return g
}
