package server

import (
	"testing"

	"github.com/shardns/shardns/dnsd/transport"
)

// TestProtoOfEncryptedListeners: the proto label names the listener a
// message came over, as the transport marks it.
func TestProtoOfEncryptedListeners(t *testing.T) {
	for _, tt := range []struct {
		peer transport.Peer
		want string
	}{
		{transport.Peer{}, "udp"},
		{transport.Peer{TCP: true}, "tcp"},
		{transport.Peer{TCP: true, Proto: transport.ProtoDoT}, "dot"},
		{transport.Peer{TCP: true, Proto: transport.ProtoDoH}, "doh"},
		{transport.Peer{TCP: true, Proto: transport.ProtoDoQ}, "doq"},
	} {
		if got := protoNames[protoOf(tt.peer)]; got != tt.want || got != tt.peer.Protocol() {
			t.Errorf("%+v: proto label %q (Protocol() %q), want %q", tt.peer, got, tt.peer.Protocol(), tt.want)
		}
	}
}
