package cache

import "time"

// MinRefreshLead is the least time before expiry a popular entry is
// refreshed: a refresh must find a hit inside its window and then reach
// the resolver before the entry expires, and the fleet's hit counts travel
// once a second to a scheduler that looks once a second, so the last
// tenth of a TTL of a few seconds is too short a window for either.
const MinRefreshLead = 3 * time.Second

// RefreshAt is when a popular entry should be refreshed, by this process
// or through the work queue: at the start of the last tenth of its TTL, or
// MinRefreshLead before it expires, whichever comes first, but never
// before half its TTL, so a refresh at most doubles the resolver's work
// for an entry.
func (e *Entry) RefreshAt() time.Time {
	ttl := time.Duration(e.TTL) * time.Second
	lead := min(max(ttl/10, MinRefreshLead), ttl/2)
	return e.Expires().Add(-lead)
}
