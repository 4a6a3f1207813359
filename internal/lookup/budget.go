package lookup

import (
	"context"
	"time"

	"github.com/shardns/shardns/internal/cache"
	"github.com/shardns/shardns/internal/dnsmsg"
)

// BudgetHandler is a chain that enforces a lookup's budget itself, arming
// a timer only when the lookup must wait for the resolver: the chain
// Build returns is one. A cache hit, the common case, then costs no timer
// (the cache bounds its own reads), where context.WithTimeout arms and
// stops one per query.
type BudgetHandler interface {
	Handler
	// LookupBudget is Lookup(ctx with budget as its timeout, q).
	LookupBudget(ctx context.Context, budget time.Duration, q *dnsmsg.Query) (*Result, error)
}

var _ BudgetHandler = (*metricsStep)(nil)

// LookupBudget looks q up within budget: see BudgetHandler.
func (s *metricsStep) LookupBudget(ctx context.Context, budget time.Duration, q *dnsmsg.Query) (*Result, error) {
	return s.Lookup(withBudget(ctx, budget, nil), q)
}

// withBudget is ctx with a deadline budget from now (or ctx's own, if
// sooner) that no timer enforces yet, and the cache read already made
// for the lookup, if any.
func withBudget(ctx context.Context, budget time.Duration, read *cache.Got) *budgetCtx {
	d := time.Now().Add(budget)
	if pd, ok := ctx.Deadline(); ok && pd.Before(d) {
		d = pd // armed by ctx itself
	}
	return &budgetCtx{Context: ctx, deadline: d, read: read}
}

// budgetCtx carries a deadline that no timer enforces yet. Deadline
// reports it, so that the cache's reads end by it; Done and Err are the
// parent's until a step that waits for something else arms it. It stays
// inside the chain: every step that waits beyond the cache calls arm
// first.
type budgetCtx struct {
	context.Context
	deadline time.Time
	read     *cache.Got // the cache read LookupCached made, for cacheStep
}

func (c *budgetCtx) Deadline() (time.Time, bool) { return c.deadline, true }

// arm returns ctx with its deadline enforced: a budgetCtx becomes a
// context.WithDeadline; any other ctx is returned as it is.
func arm(ctx context.Context) (context.Context, context.CancelFunc) {
	if c, ok := ctx.(*budgetCtx); ok {
		return context.WithDeadline(c.Context, c.deadline)
	}
	return ctx, func() {}
}
