package procmetrics

import (
	"runtime"
	"testing"
)

// The registry has the live heap, Go's usual series and the process's.
func TestRegistry(t *testing.T) {
	runtime.GC() // the live heap is measured by a collection
	fams, err := Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		if m := f.GetMetric(); len(m) == 1 {
			got[f.GetName()] = m[0].GetGauge().GetValue() + m[0].GetCounter().GetValue()
		}
	}
	for _, name := range []string{"go_gc_heap_live_bytes", "go_memstats_heap_inuse_bytes", "go_goroutines", "process_resident_memory_bytes"} {
		if got[name] <= 0 {
			t.Errorf("%s = %v, want a positive value", name, got[name])
		}
	}
	if got["go_gc_heap_live_bytes"] > got["go_memstats_heap_inuse_bytes"] {
		t.Errorf("live heap %v above the heap in use %v", got["go_gc_heap_live_bytes"], got["go_memstats_heap_inuse_bytes"])
	}
}

// shardns_build_info is 1, labelled with the build.
func TestBuildInfo(t *testing.T) {
	fams, err := Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range fams {
		if f.GetName() != "shardns_build_info" {
			continue
		}
		found = true
		if len(f.GetMetric()) != 1 {
			t.Fatalf("%d series", len(f.GetMetric()))
		}
		m := f.GetMetric()[0]
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if m.GetGauge().GetValue() != 1 || labels["goversion"] != runtime.Version() || labels["version"] == "" || labels["revision"] == "" {
			t.Errorf("shardns_build_info %v = %v", labels, m.GetGauge().GetValue())
		}
	}
	if !found {
		t.Error("no shardns_build_info")
	}
}
