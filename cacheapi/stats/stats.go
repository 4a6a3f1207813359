// Package stats serves GET /stats: the serving process's own numbers (its
// in-process cache and its lookups), and with a Redis tier every cache
// shard as Redis counts it, every frontend of the fleet as it last
// published, and the fleet's sums, as one JSON document.
package stats

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/shardns/shardns/internal/fleetstats"
)

// Timeout bounds one /stats request: a dead or frozen shard shows as down,
// the request never hangs.
const Timeout = 2 * time.Second

// Source is what /stats reads (fleetstats.Reader).
type Source interface {
	// Shards returns every shard, a down one marked so; an error when no
	// shard can be listed at all.
	Shards(ctx context.Context) ([]fleetstats.Shard, error)
	// Frontends returns the frontends that published recently.
	Frontends(ctx context.Context) ([]fleetstats.Frontend, error)
}

var _ Source = (*fleetstats.Reader)(nil)

// LocalSource is the process's own numbers (fleetstats.Local).
type LocalSource interface {
	// Read returns the numbers now; with an error, what could be read.
	Read(ctx context.Context) (fleetstats.Process, error)
}

var _ LocalSource = (*fleetstats.Local)(nil)

// Response is the body of a successful GET /stats.
type Response struct {
	GeneratedAt time.Time             `json:"generated_at"`
	Shards      []fleetstats.Shard    `json:"shards"`
	Frontends   []fleetstats.Frontend `json:"frontends"`
	Fleet       fleetstats.Fleet      `json:"fleet"`
	// Process is the serving process's own numbers; absent when the
	// handler was given none.
	Process *fleetstats.Process `json:"process,omitempty"`
	// Errors lists what could not be read when the rest could.
	Errors []string `json:"errors,omitempty"`
}

// errorBody is the body of a failed request.
type errorBody struct {
	Error string `json:"error"`
}

// Handler serves GET (and HEAD) /stats from the fleet source src, within
// Timeout. It answers 503 with {"error": ...} when neither the fleet nor
// any shard can be read, and 405 for other methods. It does not look at
// the path.
func Handler(src Source) http.Handler {
	return &handler{src: src, timeout: Timeout, now: time.Now}
}

// New serves GET (and HEAD) /stats from fleet and local, either of which
// may be nil (not both): the shards and frontends of the fleet (none
// without one), and the process's own numbers. It answers 503 only when
// nothing at all can be read.
func New(fleet Source, local LocalSource) http.Handler {
	return &handler{src: fleet, local: local, timeout: Timeout, now: time.Now}
}

type handler struct {
	src     Source      // nil: no fleet
	local   LocalSource // nil: no process numbers
	timeout time.Duration
	now     func() time.Time
}

// result is one of the two reads.
type result[T any] struct {
	v   []T
	err error
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: "method not allowed"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	var sh result[fleetstats.Shard]
	var fr result[fleetstats.Frontend]
	if h.src != nil {
		shards := start(ctx, h.src.Shards)
		fronts := start(ctx, h.src.Frontends)
		sh, fr = await(ctx, shards), await(ctx, fronts)
	}

	resp := Response{GeneratedAt: h.now().UTC(), Shards: sh.v, Frontends: fr.v}
	var lerr error
	if h.local != nil {
		p, err := h.local.Read(ctx)
		resp.Process, lerr = &p, err
		if err != nil {
			resp.Errors = append(resp.Errors, fmt.Sprintf("process: %v", err))
		}
	}
	if resp.Shards == nil {
		resp.Shards = []fleetstats.Shard{}
	}
	if resp.Frontends == nil {
		resp.Frontends = []fleetstats.Frontend{}
	}
	resp.Fleet = fleetstats.Sum(resp.Frontends)
	if sh.err != nil {
		resp.Errors = append(resp.Errors, fmt.Sprintf("shards: %v", sh.err))
	}
	if fr.err != nil {
		resp.Errors = append(resp.Errors, fmt.Sprintf("frontends: %v", fr.err))
	}
	fleetDown := h.src == nil || fr.err != nil && !anyUp(resp.Shards)
	if fleetDown && (h.local == nil || lerr != nil) {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "stats: nothing readable: " + errors.Join(sh.err, fr.err, lerr).Error()})
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// start runs f in its own goroutine; its result arrives on the channel.
func start[T any](ctx context.Context, f func(context.Context) ([]T, error)) <-chan result[T] {
	ch := make(chan result[T], 1)
	go func() {
		v, err := f(ctx)
		ch <- result[T]{v, err}
	}()
	return ch
}

// await returns the result from ch, or ctx's error once ctx is done: a
// Source that ignores its deadline cannot hold the request.
func await[T any](ctx context.Context, ch <-chan result[T]) result[T] {
	select {
	case res := <-ch:
		return res
	case <-ctx.Done():
		select {
		case res := <-ch:
			return res
		default:
			return result[T]{err: fmt.Errorf("stats: %w", ctx.Err())}
		}
	}
}

func anyUp(shards []fleetstats.Shard) bool {
	for _, s := range shards {
		if s.Up {
			return true
		}
	}
	return false
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		code = http.StatusInternalServerError
		buf.Reset()
		_ = json.NewEncoder(&buf).Encode(errorBody{Error: "stats: encode: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// Of returns the /stats handler over a frontend's sources, or nil when it
// has neither a fleet nor its own numbers to show.
func Of(src fleetstats.Sources) http.Handler {
	var fleet Source
	var local LocalSource
	if src.Fleet != nil {
		fleet = src.Fleet
	}
	if src.Local != nil {
		local = src.Local
	}
	if fleet == nil && local == nil {
		return nil
	}
	return New(fleet, local)
}
