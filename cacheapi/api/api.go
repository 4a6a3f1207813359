// Package api is shardns's REST API on gorilla/mux: lookups in the dns-json
// format through the same lookup chain dnsd uses, health, and metrics. The
// all-in-one dnsd serves it in-process with -http.
package api

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shardns/shardns/internal/lookup"
)

// Config is what New needs.
type Config struct {
	Chain    lookup.Handler      // required
	Gatherer prometheus.Gatherer // for /metrics; nil: no /metrics
	Logger   *slog.Logger
}

// API serves the REST routes.
type API struct {
	chain lookup.Handler
	log   *slog.Logger
}

// New returns the API's HTTP handler.
func New(cfg Config) http.Handler {
	a := &API{chain: cfg.Chain, log: cfg.Logger}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	r := mux.NewRouter()
	r.HandleFunc("/lookup", a.lookup).Methods(http.MethodGet)
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}).Methods(http.MethodGet)
	if cfg.Gatherer != nil {
		r.Handle("/metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{})).Methods(http.MethodGet)
	}
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no such route")
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
	})
	return r
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// errorBody is every error the API returns.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}
