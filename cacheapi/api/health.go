package api

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"
)

// readyBudget bounds one /readyz.
const readyBudget = 2 * time.Second

// readiness is /readyz's answer: each dependency "ok" or "down", and on
// 503 an error naming what is down. Why it is down (which address did not
// answer) goes to the log only.
type readiness struct {
	Status string            `json:"status,omitempty"`
	Error  string            `json:"error,omitempty"`
	Checks map[string]string `json:"checks"`
}

// readyz answers 200 when every dependency is usable (at least one Redis
// shard answers, or there is no Redis; the resolver answers), else 503.
func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	out := readiness{Checks: map[string]string{}}
	if a.ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readyBudget)
		defer cancel()
		var down []string
		for name, err := range a.ready.Ready(ctx) {
			if err != nil {
				a.log.Warn("api: not ready", "dependency", name, "err", err)
				out.Checks[name] = "down"
				down = append(down, name)
			} else {
				out.Checks[name] = "ok"
			}
		}
		if len(down) > 0 {
			slices.Sort(down)
			out.Error = "not ready: " + strings.Join(down, ", ") + " down"
			writeJSON(w, http.StatusServiceUnavailable, out)
			return
		}
	}
	out.Status = "ready"
	writeJSON(w, http.StatusOK, out)
}
