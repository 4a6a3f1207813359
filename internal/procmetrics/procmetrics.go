// Package procmetrics is the Prometheus registry each daemon starts from:
// the Go runtime's metrics, with the live heap (the heap marked at the
// last collection, which the go_memstats_ series lack), and the process's
// CPU, memory and descriptors.
package procmetrics

import (
	"regexp"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Registry returns a new registry holding the Go and process collectors.
// The live heap is go_gc_heap_live_bytes.
func Registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	live := collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)}
	reg.MustRegister(
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(live)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}
