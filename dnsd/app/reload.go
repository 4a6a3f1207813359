package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/resolverd/resolve"
)

// flusher drops cached answers: a name and every name under it
// (frontend.Frontend.Flush).
type flusher interface {
	Flush(ctx context.Context, name string, suffix bool) (cache.FlushResult, error)
}

// ReloadResolver applies cfg's resolving flags (-upstream, -forward,
// -trusted-upstream, -zones) to res, the all-in-one dnsd's in-process
// resolver (see resolve.Resolver.Reload: an error changes nothing), then
// drops from the cache every answer at or under a local zone, of the old
// set or the new. Answers from local zones are cached like any other, so
// without the flush an edited zone would be served from the cache until
// its TTLs ran out; with it the next query for the zone gets the new
// data. A failed flush is an error after a reload that did happen: the
// resolver answers from the new configuration either way.
func ReloadResolver(ctx context.Context, res *resolve.Resolver, fe flusher, cfg Config, listen []string, log *slog.Logger) error {
	rcfg, err := InProcessConfig(cfg, listen)
	if err != nil {
		return err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rcfg.Logger = log
	before := res.Zones()
	if err := res.Reload(rcfg); err != nil {
		return fmt.Errorf("dnsd: %w", err)
	}
	zones := append(before, res.Zones()...)
	slices.Sort(zones)
	var errs []error
	for _, z := range slices.Compact(zones) {
		r, err := fe.Flush(ctx, z, true)
		if err != nil {
			errs = append(errs, fmt.Errorf("flush %s: %w", z, err))
			continue
		}
		log.Debug("local zone flushed from the cache after reload", "zone", z, "deleted", r.Deleted)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("dnsd: resolver reloaded, but cached answers of its local zones may linger: %w", err)
	}
	return nil
}
