package transport

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"
)

// udpReader is one socket's reading loop and the buffers it reuses.
type udpReader struct {
	s       *Server
	rd      dgramReader
	w       dgramWriter   // where replies leave: a send socket, or the read one
	inline  InlineHandler // nil: no datagram is answered on the reading goroutine
	batch   BatchHandler  // nil: every datagram not answered inline goes to a worker alone
	pending []udpJob      // r.in's datagrams left to answer after the inline pass (buf unset)
	pendAt  []int         // and their slots in r.in
	in      []dgram
	bufs    []*[]byte // in[i].b is *bufs[i]
	out     []dgram
	outBufs [][]byte // reply space for inline answers, one per slot

	// Datagrams the inline handler did not answer go to answering
	// workers, one by one or a read's worth at once (BatchHandler): an
	// idle worker takes the next job (jobs is unbuffered), and when none
	// is idle a new one starts. The replies go to the
	// socket's writer, which sends them in batches; workers counts the
	// answering goroutines, so that the writer stops only after the last
	// of them queued its reply.
	jobs    chan udpJob
	quit    chan struct{} // closed when the socket is no longer read: idle workers exit
	replies chan udpReply
	workers sync.WaitGroup
}

// udpJob is a datagram on its way to an answering worker; buf goes back to
// the pool once it is answered.
type udpJob struct {
	buf   *[]byte
	n     int
	from  netip.AddrPort
	local netip.Addr // where it came to, on a wildcard socket: the reply's source
	// fin, when set, answers it in place of ServeMessage, in out: the
	// BatchHandler left it undone (see BatchMsg).
	fin func(context.Context, []byte) []byte
	out *[]byte
	// group, when set, is a read's datagrams for the BatchHandler, and
	// the fields above are unused.
	group []udpJob
}

// udpWorkerIdle is how long an answering worker waits for its next
// datagram before it exits. A worker outlives its first answer so that a
// busy socket reuses the stacks its workers have grown: a new goroutine
// per query grew (and copied) its stack on every query, about a sixth of
// dnsd's CPU on Redis hits.
const udpWorkerIdle = 2 * time.Second

// udpReply is a reply from an answering goroutine on its way out: buf
// holds it and goes back to the pool once it is sent.
type udpReply struct {
	buf  *[]byte
	msg  []byte
	to   netip.AddrPort
	from netip.Addr // the reply's source, on a wildcard socket
}

// readUDP reads datagrams until the socket closes, as many per call as are
// waiting, up to udpBatch. A message the handler can answer at once
// (InlineHandler) is answered here, and the batch's inline replies leave
// in one write call; any other is answered on its own goroutine while
// fewer than MaxUDPInFlight are being answered, and beyond that dropped, as
// a loaded server must (the client retries). Their replies leave through
// the socket's writer, also in batches. Replies leave through w, or pc
// when w is nil. With dstInfo (a wildcard socket) each reply leaves from
// the address its query came to.
func (s *Server) readUDP(pc *net.UDPConn, w dgramWriter, dstInfo bool) {
	defer s.wg.Done()
	r := &udpReader{s: s, rd: newDgramReader(pc, dstInfo), w: w,
		in: make([]dgram, udpBatch), bufs: make([]*[]byte, udpBatch),
		jobs: make(chan udpJob), quit: make(chan struct{}), replies: make(chan udpReply, 4*udpBatch)}
	if r.w == nil {
		r.w = newReplyWriter(pc)
	}
	r.inline, _ = s.cfg.Handler.(InlineHandler)
	r.batch, _ = s.cfg.Handler.(BatchHandler)
	for i := range r.in {
		r.bufs[i] = s.bufs.Get().(*[]byte)
		r.in[i].b = *r.bufs[i]
	}
	if r.inline != nil {
		r.out = make([]dgram, udpBatch)
		r.outBufs = make([][]byte, udpBatch)
		for i := range r.out {
			r.outBufs[i] = make([]byte, 0, udpReadSize)
		}
	}
	s.wg.Add(1)
	go r.writeReplies()
	defer func() {
		for _, bp := range r.bufs {
			s.bufs.Put(bp)
		}
		close(r.quit)
		r.workers.Wait()
		close(r.replies)
	}()
	for {
		n, err := r.rd.readBatch(r.in)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || s.stopping.Load() {
				return
			}
			s.log.Debug("udp read", "err", err)
			continue
		}
		s.metrics.udpBatch.Observe(float64(n))
		r.serve(n)
	}
}

// serve answers the n datagrams just read into r.in.
func (r *udpReader) serve(n int) {
	s := r.s
	k := 0 // inline replies in r.out
	for i := range n {
		m := &r.in[i]
		from := m.peer
		if !from.IsValid() {
			continue
		}
		req := (*r.bufs[i])[:m.n]
		if r.inline != nil {
			if reply, done := r.inline.ServeInline(req, Peer{Addr: from}, r.outBufs[k][:0]); done {
				if reply != nil {
					r.out[k] = dgram{b: reply, peer: from, local: m.local}
					k++
				}
				continue
			}
		}
		select {
		case s.udpSem <- struct{}{}:
		default:
			s.metrics.udpDropped.Inc()
			continue
		}
		r.pending = append(r.pending, udpJob{n: m.n, from: from, local: m.local})
		r.pendAt = append(r.pendAt, i)
	}
	r.write(r.out[:k])
	if len(r.pending) == 0 {
		return
	}
	var group []udpJob
	if r.batch != nil {
		group = make([]udpJob, 0, len(r.pending))
	}
	for k, i := range r.pendAt {
		j := r.pending[k]
		j.buf = r.bufs[i]
		if group != nil {
			group = append(group, j)
		} else {
			r.dispatch(j)
		}
		// A worker owns the buffer now: the slot takes a new one.
		r.bufs[i] = s.bufs.Get().(*[]byte)
		r.in[i].b = *r.bufs[i]
	}
	clear(r.pending) // hold no client address past its dispatch
	r.pending, r.pendAt = r.pending[:0], r.pendAt[:0]
	if group != nil {
		r.dispatch(udpJob{group: group})
	}
}

// dispatch hands j to an idle worker, or to a new one if none is idle.
// A worker may dispatch too (what ServeBatch left undone): its own count
// in workers keeps the total above zero while it adds to it.
func (r *udpReader) dispatch(j udpJob) {
	select {
	case r.jobs <- j:
	default:
		r.workers.Add(1)
		go r.work(j)
	}
}

// work is an answering worker: it answers j, then the datagrams handed to
// it while it waits, until it has waited udpWorkerIdle in vain or the
// socket is no longer read.
func (r *udpReader) work(j udpJob) {
	defer r.workers.Done()
	idle := time.NewTimer(udpWorkerIdle)
	defer idle.Stop()
	var scratch *groupScratch
	for {
		if j.group != nil {
			if scratch == nil {
				scratch = newGroupScratch()
			}
			r.answerGroup(j.group, scratch)
		} else {
			r.answer(j)
		}
		idle.Reset(udpWorkerIdle)
		select {
		case j = <-r.jobs:
		case <-idle.C:
			return
		case <-r.quit:
			return
		}
	}
}

// answer answers one datagram and queues the reply for the writer.
// ServeMessage's ctx ends at Shutdown.
func (r *udpReader) answer(j udpJob) {
	defer func() { <-r.s.udpSem }()
	out := j.out
	if out == nil {
		out = r.s.bufs.Get().(*[]byte)
	}
	var reply []byte
	if j.fin != nil {
		reply = j.fin(r.s.ctx, (*out)[:0])
	} else {
		reply = r.s.cfg.Handler.ServeMessage(r.s.ctx, (*j.buf)[:j.n], Peer{Addr: j.from}, (*out)[:0])
	}
	r.s.bufs.Put(j.buf)
	if reply == nil {
		r.s.bufs.Put(out)
		return
	}
	r.replies <- udpReply{buf: out, msg: reply, to: j.from, from: j.local}
}

// groupScratch is what a worker reuses from one group to the next.
type groupScratch struct {
	ms   []BatchMsg
	outs []*[]byte
	wm   []dgram
}

func newGroupScratch() *groupScratch {
	return &groupScratch{ms: make([]BatchMsg, 0, udpBatch), outs: make([]*[]byte, 0, udpBatch), wm: make([]dgram, udpBatch)}
}

// answerGroup answers a read's datagrams through the BatchHandler: the
// replies it makes at once leave together in one write call, and each
// datagram it leaves undone is answered on a goroutine of its own.
func (r *udpReader) answerGroup(group []udpJob, g *groupScratch) {
	s := r.s
	ms, outs := g.ms[:0], g.outs[:0]
	for _, j := range group {
		out := s.bufs.Get().(*[]byte)
		outs = append(outs, out)
		ms = append(ms, BatchMsg{Req: (*j.buf)[:j.n], From: Peer{Addr: j.from}, Dst: (*out)[:0]})
	}
	r.batch.ServeBatch(s.ctx, ms)
	k := 0
	for i := range ms {
		m := &ms[i]
		if !m.Done {
			j := group[i]
			j.fin, j.out = m.Finish, outs[i]
			r.dispatch(j)
			outs[i] = nil
			continue
		}
		if m.Reply != nil {
			g.wm[k] = dgram{b: m.Reply, peer: group[i].from, local: group[i].local}
			k++
		}
	}
	r.write(g.wm[:k])
	for i := range ms {
		if outs[i] != nil { // answered here
			s.bufs.Put(group[i].buf)
			s.bufs.Put(outs[i])
			<-s.udpSem
		}
		ms[i], outs[i] = BatchMsg{}, nil
	}
}

// writeReplies sends the replies of answering goroutines, as many per
// call as have queued, until the reader closes the queue: after the
// socket stopped being read and the last answer was queued.
func (r *udpReader) writeReplies() {
	defer r.s.wg.Done()
	ms := make([]dgram, udpBatch)
	bufs := make([]*[]byte, udpBatch)
	for rep := range r.replies {
		if len(r.replies) == 0 {
			// Let workers that are ready to run queue their replies
			// first, so that they leave in this call: with nothing
			// else runnable this returns at once.
			runtime.Gosched()
		}
		k := 0
		for more := true; more; {
			ms[k], bufs[k] = dgram{b: rep.msg, peer: rep.to, local: rep.from}, rep.buf
			k++
			more = false
			if k < len(ms) {
				select {
				case rep, more = <-r.replies:
				default:
				}
			}
		}
		r.write(ms[:k])
		for i := range k {
			r.s.bufs.Put(bufs[i])
			bufs[i] = nil
		}
	}
}

// write sends ms in as few calls as the kernel allows. A reply the kernel
// refuses (an unreachable peer, say) is skipped; the rest still go. It
// clears ms: no reply or client address is held past its sending.
func (r *udpReader) write(ms []dgram) {
	defer clear(ms)
	for sent := 0; sent < len(ms); {
		n, err := r.w.writeBatch(ms[sent:])
		r.s.metrics.udpOutBatch.Observe(float64(max(n, 1)))
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			n = max(n, 0) // sent before the one that failed
			r.s.log.Debug("udp write", "to", ms[sent+n].peer, "err", err)
			n++ // skip it
		}
		sent += n
	}
}
