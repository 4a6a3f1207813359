package transport

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// udpBatch is the most datagrams one read or write call moves. On Linux a
// call is one recvmmsg or sendmmsg, so under load one system call carries
// up to udpBatch queries or replies; elsewhere x/net falls back to one
// datagram per call.
const udpBatch = 32

// batchWriter sends several datagrams per call.
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// batchConn reads and writes several datagrams per call.
type batchConn interface {
	ReadBatch(ms []ipv4.Message, flags int) (int, error)
	batchWriter
}

func newBatchConn(pc *net.UDPConn) batchConn {
	if a, ok := pc.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
		return ipv6.NewPacketConn(pc)
	}
	return ipv4.NewPacketConn(pc)
}

// udpReader is one socket's reading loop and the buffers it reuses.
type udpReader struct {
	s       *Server
	bc      batchConn
	w       batchWriter   // where replies leave: a send socket, or bc
	inline  InlineHandler // nil: no datagram is answered on the reading goroutine
	batch   BatchHandler  // nil: every datagram not answered inline goes to a worker alone
	pending []udpJob      // r.in's datagrams left to answer after the inline pass (buf unset)
	pendAt  []int         // and their slots in r.in
	in      []ipv4.Message
	bufs    []*[]byte // in[i].Buffers[0] is *bufs[i]
	out     []ipv4.Message
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
	buf  *[]byte
	n    int
	to   net.Addr
	from netip.AddrPort
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
	buf *[]byte
	msg []byte
	to  net.Addr
}

// readUDP reads datagrams until the socket closes, as many per call as are
// waiting, up to udpBatch. A message the handler can answer at once
// (InlineHandler) is answered here, and the batch's inline replies leave
// in one write call; any other is answered on its own goroutine while
// fewer than MaxUDPInFlight are being answered, and beyond that dropped, as
// a loaded server must (the client retries). Their replies leave through
// the socket's writer, also in batches. Replies leave through w, or pc
// when w is nil.
func (s *Server) readUDP(pc *net.UDPConn, w batchWriter) {
	defer s.wg.Done()
	r := &udpReader{s: s, bc: newBatchConn(pc), w: w,
		in: make([]ipv4.Message, udpBatch), bufs: make([]*[]byte, udpBatch),
		jobs: make(chan udpJob), quit: make(chan struct{}), replies: make(chan udpReply, 4*udpBatch)}
	if r.w == nil {
		r.w = r.bc
	}
	r.inline, _ = s.cfg.Handler.(InlineHandler)
	r.batch, _ = s.cfg.Handler.(BatchHandler)
	for i := range r.in {
		r.bufs[i] = s.bufs.Get().(*[]byte)
		r.in[i].Buffers = [][]byte{*r.bufs[i]}
	}
	if r.inline != nil {
		r.out = make([]ipv4.Message, udpBatch)
		r.outBufs = make([][]byte, udpBatch)
		for i := range r.out {
			r.out[i].Buffers = make([][]byte, 1)
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
		n, err := r.bc.ReadBatch(r.in, 0)
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
		ua, ok := m.Addr.(*net.UDPAddr)
		if !ok {
			continue
		}
		from := ua.AddrPort()
		req := (*r.bufs[i])[:m.N]
		if r.inline != nil {
			if reply, done := r.inline.ServeInline(req, Peer{Addr: from}, r.outBufs[k][:0]); done {
				if reply != nil {
					r.out[k].Buffers[0], r.out[k].Addr = reply, m.Addr
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
		r.pending = append(r.pending, udpJob{n: m.N, to: m.Addr, from: from})
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
		r.in[i].Buffers[0] = *r.bufs[i]
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
	r.replies <- udpReply{buf: out, msg: reply, to: j.to}
}

// groupScratch is what a worker reuses from one group to the next.
type groupScratch struct {
	ms   []BatchMsg
	outs []*[]byte
	wm   []ipv4.Message
}

func newGroupScratch() *groupScratch {
	g := &groupScratch{ms: make([]BatchMsg, 0, udpBatch), outs: make([]*[]byte, 0, udpBatch), wm: make([]ipv4.Message, udpBatch)}
	for i := range g.wm {
		g.wm[i].Buffers = make([][]byte, 1)
	}
	return g
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
			g.wm[k].Buffers[0], g.wm[k].Addr = m.Reply, group[i].to
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
	for i := range k {
		g.wm[i].Buffers[0] = nil
	}
}

// writeReplies sends the replies of answering goroutines, as many per
// call as have queued, until the reader closes the queue: after the
// socket stopped being read and the last answer was queued.
func (r *udpReader) writeReplies() {
	defer r.s.wg.Done()
	ms := make([]ipv4.Message, udpBatch)
	bufs := make([]*[]byte, udpBatch)
	for i := range ms {
		ms[i].Buffers = make([][]byte, 1)
	}
	for rep := range r.replies {
		if len(r.replies) == 0 {
			// Let workers that are ready to run queue their replies
			// first, so that they leave in this call: with nothing
			// else runnable this returns at once.
			runtime.Gosched()
		}
		k := 0
		for more := true; more; {
			ms[k].Buffers[0], ms[k].Addr, bufs[k] = rep.msg, rep.to, rep.buf
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
			bufs[i], ms[i].Buffers[0] = nil, nil
		}
	}
}

// write sends ms in as few calls as the kernel allows. A reply the kernel
// refuses (an unreachable peer, say) is skipped; the rest still go.
func (r *udpReader) write(ms []ipv4.Message) {
	for sent := 0; sent < len(ms); {
		n, err := r.w.WriteBatch(ms[sent:], 0)
		r.s.metrics.udpOutBatch.Observe(float64(max(n, 1)))
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			n = max(n, 0) // sent before the one that failed
			r.s.log.Debug("udp write", "to", ms[sent+n].Addr, "err", err)
			n++ // skip it
		}
		sent += n
	}
	for i := range ms {
		ms[i].Addr = nil // hold no client address past its reply
	}
}
