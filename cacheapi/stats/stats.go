// Package stats serves GET /stats: every cache shard as Redis counts it,
// every frontend of the fleet as it last published, and the fleet's sums,
// as one JSON document.
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

// Response is the body of a successful GET /stats.
type Response struct {
	GeneratedAt time.Time             `json:"generated_at"`
	Shards      []fleetstats.Shard    `json:"shards"`
	Frontends   []fleetstats.Frontend `json:"frontends"`
	Fleet       fleetstats.Fleet      `json:"fleet"`
	// Errors lists what could not be read when the rest could.
	Errors []string `json:"errors,omitempty"`
}

// errorBody is the body of a failed request.
type errorBody struct {
	Error string `json:"error"`
}

// Handler serves GET (and HEAD) /stats from src, within Timeout. It answers
// 503 with {"error": ...} when neither the fleet nor any shard can be read,
// and 405 for other methods. It does not look at the path.
func Handler(src Source) http.Handler {
	return &handler{src: src, timeout: Timeout, now: time.Now}
}

type handler struct {
	src     Source
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
	shards := start(ctx, h.src.Shards)
	fronts := start(ctx, h.src.Frontends)
	sh, fr := await(ctx, shards), await(ctx, fronts)

	resp := Response{GeneratedAt: h.now().UTC(), Shards: sh.v, Frontends: fr.v}
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
	if fr.err != nil && !anyUp(resp.Shards) {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "stats: nothing readable: " + errors.Join(sh.err, fr.err).Error()})
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

// Of returns the /stats handler over r, or nil when there is no reader (a
// frontend with no Redis tier has no fleet to show).
func Of(r *fleetstats.Reader) http.Handler {
	if r == nil {
		return nil
	}
	return Handler(r)
}
