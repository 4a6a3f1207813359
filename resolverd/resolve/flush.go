package resolve

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// FlushZone drops every cached answer at or under zone from the caches in
// front of a resolver, reporting how many it deleted.
type FlushZone func(ctx context.Context, zone string) (deleted int, err error)

// ReloadFlushing reloads r with cfg (see Reload: an error changes nothing),
// then flushes from the caches every local zone of the old set or the
// new. Answers from local zones are cached like any other, so without the
// flush an edited zone would be served from the caches until its TTLs ran
// out; with it the next query for the zone gets the new data. A failed
// flush (a shard down) is logged, not returned: the resolver answers from
// the new configuration either way, and the answers left behind expire
// with their TTLs.
func (r *Resolver) ReloadFlushing(ctx context.Context, cfg Config, flush FlushZone) error {
	log := cfg.Logger
	if log == nil {
		log = r.log
	}
	before := r.Zones()
	if err := r.Reload(cfg); err != nil {
		return err
	}
	zones := append(before, r.Zones()...)
	slices.Sort(zones)
	var errs []error
	for _, z := range slices.Compact(zones) {
		n, err := flush(ctx, z)
		if err != nil {
			errs = append(errs, fmt.Errorf("flush %s: %w", z, err))
			continue
		}
		log.Debug("local zone flushed from the cache after reload", "zone", z, "deleted", n)
	}
	if err := errors.Join(errs...); err != nil {
		log.Warn("resolver reloaded, but cached answers of its local zones may linger until their TTLs end", "err", err)
	}
	return nil
}
