package app

import (
	"github.com/shardns/shardns/internal/dnstaplog"
	"github.com/shardns/shardns/resolverd/forward"
)

// upstreamTap is tap as the forwarder takes it: nil when -dnstap is off,
// so that the forwarder skips it with one check.
func upstreamTap(tap *dnstaplog.Logger) forward.Tap {
	if tap == nil {
		return nil
	}
	return tap
}
