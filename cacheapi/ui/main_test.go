package ui_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// After a shard refuses PoolSize dials in a row, go-redis probes it from
	// a goroutine that sleeps a second between dials: it ends by itself, up
	// to 1s after Close.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"))
}
