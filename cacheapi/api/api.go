// Package api is shardns's REST API on gorilla/mux: lookups in the dns-json
// format and as RFC 8484 DNS over HTTPS through the same lookup chain dnsd
// uses, the cache itself (inspect, flush), health, readiness and metrics.
// The all-in-one dnsd serves it in-process with -http.
//
// Routes:
//
//	GET  /lookup?name=&type=&do=&cd=   dns-json answer, with Source, Shard, TTL
//	GET  /dns-query?dns=<base64url>    RFC 8484; with Accept: application/dns-json
//	                                   and name=&type= the dns-json answer
//	POST /dns-query                    RFC 8484, body application/dns-message
//	GET  /cache/{name}?type=&do=&cd=   the stored entry (404 when absent);
//	                                   needs the token
//	DELETE /cache/{name}[?suffix=1]    flush a name (every type), or every name
//	                                   at or under it; reaches every frontend's L1
//	GET  /healthz                      alive
//	GET  /readyz                       Redis and resolver reachable (else 503)
//	GET  /metrics                      Prometheus
//	POST /jobs                         warm the cache: JSON names, or a CSV body
//	GET  /jobs, /jobs/{id}             jobs and their progress
//	DELETE /jobs/{id}                  cancel a job
//	GET  /stats                        every shard and frontend of the fleet
//	GET  /openapi.yaml                 the OpenAPI 3 document of these routes
//	GET  /                             the status page (and /ui/*.js, *.css)
//
// Every error is JSON, {"error": "..."}, with a fitting status, and names
// no internal address (resolver, upstream, Redis): the log has the detail.
//
// Access, for a server a browser on the same host or network can reach:
//
//   - The Host header must name the server (see hostPolicy), else 421
//     before any handler runs: DNS rebinding gets nowhere.
//   - Calls that change state (DELETE /cache/..., POST /jobs, DELETE
//     /jobs/{id}) and GET /cache/{name} need the bearer token from every
//     client, loopback included (401 with a challenge). Those that change
//     state refuse an Origin the server does not answer to (403).
//   - POST /jobs takes application/json and text/csv only (415): no body
//     type a cross-site form or "simple" request can send.
//   - /lookup and /dns-query answer clients inside the ACL only (403) and
//     rate-limit each client (429 with Retry-After).
package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shardns/shardns/cacheapi/ui"
	"github.com/shardns/shardns/dnsd/acl"
	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/lookup"
)

// Bounds on what a client may send.
const (
	// maxURI bounds the escaped path plus the query string; longer: 414.
	maxURI = 8192
	// maxBody bounds every request body (a DNS message is at most 65535
	// bytes, and /dns-query enforces that itself).
	maxBody = 65536
)

// Cache is what the /cache routes and the Shard of /lookup need from the
// cache tiers. *frontend.Frontend implements it.
type Cache interface {
	// Shard returns the address of the Redis shard that holds key, or "".
	Shard(ctx context.Context, key string) string
	// Inspect returns the entry under key as stored, or cache.ErrMiss.
	Inspect(ctx context.Context, key string) (*cache.Inspection, error)
	// Flush removes name (with suffix, every name at or under it) from
	// the shared cache and from every frontend's L1. name is lowercased,
	// in presentation format, with its final dot.
	Flush(ctx context.Context, name string, suffix bool) (cache.FlushResult, error)
}

// Readiness reports the state of what the API depends on, by name, nil
// for usable. *frontend.Frontend implements it.
type Readiness interface {
	Ready(ctx context.Context) map[string]error
}

// Config is what New needs.
type Config struct {
	Chain    lookup.Handler      // required
	Gatherer prometheus.Gatherer // for /metrics; nil: no /metrics
	Logger   *slog.Logger
	// Cache serves /cache/{name} and the Shard of /lookup answers; nil:
	// no /cache routes.
	Cache Cache
	// Ready is what /readyz checks; nil: /readyz checks nothing.
	Ready Readiness
	// Token is the bearer token that calls changing state, and GET
	// /cache/{name}, need from every client. Empty: those calls are
	// refused.
	Token string
	// Listen is the address the API listens on, as given (":8080") or as
	// bound: the Host header may name it. See hostPolicy.
	Listen string
	// Hosts are further names the Host header may carry (-http-host).
	Hosts []string
	// ACL is who may use /lookup and /dns-query; nil: acl.Default.
	ACL *acl.ACL
	// Rate is how many requests per second one client (an IPv4 address,
	// an IPv6 /64) may make to /lookup and /dns-query, as a token bucket
	// holding Burst tokens. 0: no limit.
	Rate float64
	// Burst is the bucket size; 0: max(1, Rate).
	Burst int
	// Now is the clock for cache ages and rate limiting (nil: time.Now).
	Now func() time.Time
	// Stats serves GET /stats (cacheapi/stats); nil: no /stats.
	Stats http.Handler
	// Jobs is the work queue behind /jobs; nil: /jobs answers 404.
	Jobs Jobs
}

// API serves the REST routes.
type API struct {
	chain   lookup.Handler
	cache   Cache
	ready   Readiness
	jobs    Jobs
	token   string
	hosts   hostPolicy
	acl     *acl.ACL
	limiter *limiter // nil: no rate limit
	fails   *sampledLog
	now     func() time.Time
	log     *slog.Logger
}

// New returns the API's HTTP handler.
func New(cfg Config) http.Handler {
	a := &API{
		chain: cfg.Chain, cache: cfg.Cache, ready: cfg.Ready, jobs: cfg.Jobs, token: cfg.Token,
		hosts: newHostPolicy(cfg.Listen, cfg.Hosts), acl: cfg.ACL, now: cfg.Now, log: cfg.Logger,
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.acl == nil {
		a.acl = defaultACL()
	}
	if a.now == nil {
		a.now = time.Now
	}
	if cfg.Rate > 0 {
		a.limiter = newLimiter(cfg.Rate, cfg.Burst, a.now)
	}
	a.fails = newSampledLog(a.log, a.now)
	r := mux.NewRouter()
	// Names in /cache/{name} may hold a '/' (RFC 2317) sent as %2F, and
	// "." or ".." are names, not path steps: match the path as sent.
	r.UseEncodedPath()
	r.SkipClean(true)
	r.Handle("/lookup", a.resolving(http.HandlerFunc(a.lookup))).Methods(http.MethodGet)
	r.Handle("/dns-query", a.resolving(http.HandlerFunc(a.dohGet))).Methods(http.MethodGet)
	r.Handle("/dns-query", a.resolving(http.HandlerFunc(a.dohPost))).Methods(http.MethodPost)
	if a.cache != nil {
		r.Handle("/cache/{name}", a.authorized(http.HandlerFunc(a.cacheGet))).Methods(http.MethodGet)
		r.Handle("/cache/{name}", a.mutating(http.HandlerFunc(a.cacheDelete))).Methods(http.MethodDelete)
	}
	a.jobRoutes(r)
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}).Methods(http.MethodGet)
	r.HandleFunc("/readyz", a.readyz).Methods(http.MethodGet)
	r.Handle(`/{page:(?:ui/[a-z]+\.(?:js|css))?}`, ui.Handler()).Methods(http.MethodGet, http.MethodHead) // the status page: "/" and its assets
	r.HandleFunc("/openapi.yaml", serveOpenAPI).Methods(http.MethodGet)
	if cfg.Stats != nil {
		r.Handle("/stats", cfg.Stats).Methods(http.MethodGet, http.MethodHead)
	}
	if cfg.Gatherer != nil {
		r.Handle("/metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{})).Methods(http.MethodGet)
	}
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "no such route")
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
	})
	return a.guard(r)
}

// guard checks the Host header and bounds every request before routing
// (URI length, body size), and turns a panic into a JSON 500 rather than a
// dropped connection.
func (a *API) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.log.Error("api: handler panicked", "method", r.Method, "path", r.URL.EscapedPath(), "panic", v)
				writeError(w, http.StatusInternalServerError, "internal error")
			}
		}()
		if !a.checkHost(w, r) {
			return
		}
		if len(r.URL.EscapedPath())+len(r.URL.RawQuery) > maxURI {
			writeError(w, http.StatusRequestURITooLong, "request URI too long")
			return
		}
		if r.Body != nil {
			limit := int64(maxBody)
			if r.URL.Path == "/jobs" {
				limit = maxJobBody
			}
			r.Body = http.MaxBytesReader(w, r.Body, limit)
		}
		next.ServeHTTP(w, r)
	})
}

// defaultACL is acl.Default's ranges.
func defaultACL() *acl.ACL {
	a, err := acl.Parse(acl.Default)
	if err != nil {
		panic("api: acl.Default does not parse: " + err.Error()) // a constant
	}
	return a
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	writeJSONAs(w, "application/json", code, v)
}

func writeJSONAs(w http.ResponseWriter, ctype string, code int, v any) {
	w.Header().Set("Content-Type", ctype)
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
