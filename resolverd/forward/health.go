package forward

import (
	"context"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// maxProbeTimeout caps the timeout of one health probe.
const maxProbeTimeout = time.Second

// healthLoop probes every upstream each healthInterval until Close.
func (f *Forwarder) healthLoop() {
	defer f.wg.Done()
	t := time.NewTicker(f.healthInterval)
	defer t.Stop()
	for {
		select {
		case <-f.stopCtx.Done():
			return
		case <-t.C:
		}
		f.probeAll()
	}
}

// probeAll probes the upstreams concurrently (one goroutine each) and waits
// for all of them, so at most len(f.ups) probes run at once.
func (f *Forwarder) probeAll() {
	var wg sync.WaitGroup
	for _, u := range f.ups {
		wg.Go(func() { f.probe(u) })
	}
	wg.Wait()
}

// probe sends ". NS" to u. Any reply, whatever its RCODE, shows that u is
// alive; no reply in time counts as a failure.
func (f *Forwarder) probe(u *upstream) {
	timeout := min(f.timeout, maxProbeTimeout)
	ctx, cancel := context.WithTimeout(f.stopCtx, timeout)
	defer cancel()
	q := new(dns.Msg)
	q.SetQuestion(".", dns.TypeNS)
	start := time.Now()
	_, _, err := f.exchange(ctx, start.Add(timeout), u, q)
	f.record(u, err, time.Since(start), f.stopCtx.Err() != nil)
}
