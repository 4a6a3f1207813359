package cache

import (
	"testing"
	"time"
)

func TestRefreshAt(t *testing.T) {
	at := time.Unix(1_800_000_000, 0)
	for ttl, lead := range map[uint32]time.Duration{0: 0, 1: 500 * time.Millisecond, 4: 2 * time.Second, 20: 3 * time.Second, 30: 3 * time.Second, 300: 30 * time.Second, 86400: 8640 * time.Second} {
		e := &Entry{StoredAt: at, TTL: ttl}
		if got := e.Expires().Sub(e.RefreshAt()); got != lead {
			t.Errorf("TTL %d: refresh %v before expiry, want %v", ttl, got, lead)
		}
	}
}
