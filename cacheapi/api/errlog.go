package api

import (
	"log/slog"
	"sync"
	"time"
)

// sampledLog logs failures whose detail the client is not told (an
// address of the resolver or of Redis), at most once per interval so that
// a dependency down under load does not flood the log; the line says how
// many were left out since the last one.
type sampledLog struct {
	log      *slog.Logger
	now      func() time.Time
	interval time.Duration

	mu      sync.Mutex
	last    time.Time
	dropped int
}

func newSampledLog(log *slog.Logger, now func() time.Time) *sampledLog {
	return &sampledLog{log: log, now: now, interval: time.Second}
}

// warn logs msg with args and err, unless a line went out less than the
// interval ago.
func (s *sampledLog) warn(msg string, err error, args ...any) {
	now := s.now()
	s.mu.Lock()
	if d := now.Sub(s.last); !s.last.IsZero() && d >= 0 && d < s.interval {
		s.dropped++
		s.mu.Unlock()
		return
	}
	dropped := s.dropped
	s.last, s.dropped = now, 0
	s.mu.Unlock()
	s.log.Warn(msg, append(args, "err", err, "similar_left_out", dropped)...)
}
