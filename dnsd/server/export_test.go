package server

import (
	"context"

	"github.com/shardns/shardns/dnsd/transport"
)

// ServeMessage answers one message as the transport answers a datagram
// read alone: the reader's call, then, if it left the message, a wait call.
func (s *Server) ServeMessage(ctx context.Context, req []byte, from transport.Peer, dst []byte) []byte {
	ms := [1]transport.Msg{{Req: req, From: from, Dst: dst}}
	s.Serve(ctx, ms[:], false)
	if !ms[0].Done {
		ms[0].Dst = dst
		s.Serve(ctx, ms[:], true)
	}
	return ms[0].Reply
}

// ServeCommon is the reader's call alone on req: done reports whether it
// answered, reply is its answer. A message it leaves is dropped.
func (s *Server) ServeCommon(req []byte, from transport.Peer, dst []byte) (reply []byte, done bool) {
	ms := [1]transport.Msg{{Req: req, From: from, Dst: dst}}
	s.Serve(context.Background(), ms[:], false)
	if st, ok := ms[0].State.(*msgState); ok {
		s.putState(st)
	}
	return ms[0].Reply, ms[0].Done
}

// ServeGeneral answers req the general way (unpacked), the baseline the
// common way is compared with.
func (s *Server) ServeGeneral(ctx context.Context, req []byte, from transport.Peer, dst []byte) []byte {
	ms := [1]transport.Msg{{Req: req, From: from, Dst: dst}}
	s.serve(ctx, ms[:], true, true)
	return ms[0].Reply
}
