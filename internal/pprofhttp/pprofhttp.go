// Package pprofhttp serves Go's profiler (net/http/pprof) for the
// daemons' -pprof flag, on a mux of its own rather than
// http.DefaultServeMux.
package pprofhttp

import (
	"net/http"
	"net/http/pprof"
)

// Handler serves the profiler under /debug/pprof/. A server for it needs
// no write timeout, or one longer than the profiles asked of it: a CPU
// profile or a trace writes for as long as it runs.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
