package report

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/billing/allocation"
	"mallgrid/gateway/config"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// PostingSettle is how long after a period ends its allocation is posted:
// the last quarter hour's energy reaches the store with the meters' next
// readings, and a meter briefly offline at the end catches up.
const PostingSettle = 15 * time.Minute

// maxPostingWait bounds the poster's sleep, so that a clock set forward
// (or a machine suspended) is noticed within it.
const maxPostingWait = 10 * time.Minute

// AutoActor is the actor of the postings the gateway makes at the end of
// each period.
const AutoActor = "gateway"

// Allocator computes, posts and reverses the allocation rules: the API's
// web.Allocations, and the automatic posting at the end of each period.
// Set its fields before use.
type Allocator struct {
	DB     *store.DB
	Config *config.Config
	Now    func() time.Time
	Log    zerolog.Logger
	// Posted is called after a posting or a reversal changed balances, so
	// that enforcement looks at the accounts at once (the enforcer's Wake,
	// as after a bus cycle's charges); nil: no one is told.
	Posted func()

	mu   sync.Mutex
	told map[string]bool // the problems logged, so that each is logged once
}

// tell reports whether the problem keyed key is new (and remembers it): a
// period that cannot be posted is logged once, not at every pass.
func (a *Allocator) tell(key string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.told == nil {
		a.told = make(map[string]bool)
	}
	if a.told[key] {
		return false
	}
	a.told[key] = true
	return true
}

func (a *Allocator) loc() *time.Location {
	if a.Config.Location == nil {
		return time.UTC
	}
	return a.Config.Location
}

func (a *Allocator) rule(name string) (config.Allocation, error) {
	r, ok := a.Config.AllocationNamed(name)
	if !ok {
		var names []string
		for _, r := range a.Config.Allocations() {
			names = append(names, r.Name)
		}
		return config.Allocation{}, fmt.Errorf("%w: no allocation rule %q (rules: %v)", web.ErrNotFound, name, names)
	}
	return r, nil
}

// Preview implements web.Allocations.
func (a *Allocator) Preview(name string, from, to time.Time) (web.AllocationPreview, error) {
	r, err := a.rule(name)
	if err != nil {
		return web.AllocationPreview{}, err
	}
	al, err := ComputeAllocation(a.DB, a.Config, r, from, to)
	if errors.Is(err, ErrAllocation) {
		return web.AllocationPreview{}, fmt.Errorf("%w: %v", web.ErrInvalid, err)
	}
	if err != nil {
		return web.AllocationPreview{}, err
	}
	v := web.AllocationPreview{Rule: r.Name, From: al.From, To: al.To, Basis: r.Basis, Tariff: r.TariffName,
		PublicKWh: allocation.FormatKWh(al.PublicWh), Cost: al.Cost.String(), Shares: []web.AllocationShare{}}
	for _, s := range al.Shares {
		v.Shares = append(v.Shares, web.AllocationShare{Tenant: s.Tenant, Basis: allocation.Explain(s), Amount: s.Amount.String()})
	}
	return v, nil
}

// Postings implements web.Allocations.
func (a *Allocator) Postings() ([]web.AllocationPosting, error) {
	var out []web.AllocationPosting
	err := a.DB.EachPosting(func(p store.Posting) error {
		out = append(out, a.view(p))
		return nil
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

// Post implements web.Allocations: rule's period that starts at from,
// which must have ended PostingSettle or more before now, as the
// automatic posting waits: the last quarter hour's energy comes in with
// the readings after the period's end.
func (a *Allocator) Post(_ context.Context, name string, from time.Time, actor string) (web.AllocationPosting, bool, error) {
	r, err := a.rule(name)
	if err != nil {
		return web.AllocationPosting{}, false, err
	}
	start, end, _ := PeriodOf(r.Period, from, a.loc())
	switch {
	case !start.Equal(from):
		return web.AllocationPosting{}, false, fmt.Errorf("%w: %s is not the start of a %s of rule %s (that %s starts %s)",
			web.ErrInvalid, from.Format(time.RFC3339), r.Period, r.Name, r.Period, start.Format(time.RFC3339))
	case end.Add(PostingSettle).After(a.Now()):
		// The last quarter hour's energy may not be in yet: a period
		// posted early would be short of it, and posted once.
		return web.AllocationPosting{}, false, fmt.Errorf("%w: the %s from %s has not ended and settled: it ends %s, and is posted once its last readings are in, from %s",
			web.ErrInvalid, r.Period, start.Format(time.RFC3339), end.Format(time.RFC3339), end.Add(PostingSettle).Format(time.RFC3339))
	}
	p, existing, err := a.post(r, start, actor)
	if errors.Is(err, ErrAllocation) || errors.Is(err, store.ErrBadPosting) {
		return web.AllocationPosting{}, false, fmt.Errorf("%w: %v", web.ErrInvalid, err)
	}
	if errors.Is(err, store.ErrPostingOverlap) {
		return web.AllocationPosting{}, false, fmt.Errorf("%w: %v", web.ErrConflict, err)
	}
	if err != nil {
		return web.AllocationPosting{}, false, err
	}
	return a.view(p), existing, nil
}

// post computes and posts rule's period starting at start.
func (a *Allocator) post(r config.Allocation, start time.Time, actor string) (store.Posting, bool, error) {
	from, to, name := PeriodOf(r.Period, start, a.loc())
	al, err := ComputeAllocation(a.DB, a.Config, r, from, to)
	if err != nil {
		return store.Posting{}, false, err
	}
	p, existing, err := a.DB.PostAllocation(al.Posting(name, actor, a.Now()))
	if err != nil {
		return store.Posting{}, false, err
	}
	if !existing {
		a.Log.Info().Str("rule", r.Name).Str("period", name).Uint64("posting", p.ID).Str("cost", p.Cost.String()).
			Int64("public_wh", p.PublicWh).Int("tenants", len(p.Shares)).Str("actor", actor).Msg("allocation posted")
		if a.Posted != nil {
			a.Posted()
		}
	}
	return p, existing, nil
}

// Reverse implements web.Allocations.
func (a *Allocator) Reverse(_ context.Context, id uint64, reason, actor string) (web.AllocationPosting, error) {
	p, err := a.DB.ReverseAllocation(id, actor, reason, a.Now())
	switch {
	case errors.Is(err, store.ErrNoPosting):
		return web.AllocationPosting{}, fmt.Errorf("%w: no allocation posting %d", web.ErrNotFound, id)
	case errors.Is(err, store.ErrPostingReversed), errors.Is(err, store.ErrReversed):
		return web.AllocationPosting{}, fmt.Errorf("%w: %v", web.ErrConflict, err)
	case errors.Is(err, store.ErrBadPosting):
		return web.AllocationPosting{}, fmt.Errorf("%w: %v", web.ErrInvalid, err)
	case err != nil:
		return web.AllocationPosting{}, err
	}
	a.Log.Info().Str("rule", p.Rule).Str("period", p.Period).Uint64("posting", p.ID).Str("cost", p.Cost.String()).
		Str("actor", actor).Str("reason", reason).Msg("allocation reversed")
	if a.Posted != nil {
		a.Posted()
	}
	return a.view(p), nil
}

func (a *Allocator) view(p store.Posting) web.AllocationPosting {
	loc := a.loc()
	v := web.AllocationPosting{ID: p.ID, Period: p.Period, Time: p.Time.In(loc), Actor: p.Actor,
		AllocationPreview: web.AllocationPreview{Rule: p.Rule, From: p.From.In(loc), To: p.To.In(loc), Basis: p.Basis,
			Tariff: p.Tariff, PublicKWh: allocation.FormatKWh(p.PublicWh), Cost: p.Cost.String(), Shares: []web.AllocationShare{}}}
	for _, s := range p.Shares {
		v.Shares = append(v.Shares, web.AllocationShare{Tenant: s.Tenant, Basis: s.Basis, Amount: s.Amount.String(), Entry: s.Entry})
	}
	if r := p.Reversal; r != nil {
		v.Reversal = &web.AllocationUndo{Time: r.Time.In(loc), Actor: r.Actor, Reason: r.Reason, Entries: r.Entries}
	}
	return v
}

// PostDue posts, for every rule, each period that ended PostingSettle or
// more before now and comes after the latest period of the rule's
// postings (reversed or not: a reversed period is posted again by hand,
// POST /api/v1/allocations, and so is an older period finance posts by
// hand after later ones); a rule never posted starts with the period that
// ended last before now, so a new rule does not charge the periods before
// it. A period whose cost cannot be shared (ErrAllocation: no tenant
// consumed anything, under a consumption basis) is logged once and left
// for finance to post by hand, and the rule's later periods go on; any
// other failure stops the rule there, to be tried again at the next call.
// The other rules go on either way. It stops when ctx is cancelled, and
// returns how many postings it made.
func (a *Allocator) PostDue(ctx context.Context, now time.Time) int {
	loc := a.loc()
	made := 0
	for _, r := range a.Config.Allocations() {
		last, ok, err := a.DB.LatestPosting(r.Name)
		if err != nil {
			a.Log.Error().Err(err).Str("rule", r.Name).Msg("allocation: read the last posting")
			continue
		}
		var start time.Time
		if ok {
			start, _, _ = PeriodOf(r.Period, last.To, loc)
			if start.Before(last.To) { // the rule's period changed: the next whole one
				_, start, _ = PeriodOf(r.Period, last.To, loc)
			}
		} else {
			current, _, _ := PeriodOf(r.Period, now, loc)
			start, _, _ = PeriodOf(r.Period, current.Add(-time.Nanosecond), loc)
		}
		for ctx.Err() == nil {
			from, end, name := PeriodOf(r.Period, start, loc)
			if !from.Equal(start) || !end.After(start) {
				// A period that does not run forward from where the last
				// ended would be posted again and again.
				if a.tell(r.Name + "\x00" + name + "\x00stuck") {
					a.Log.Error().Str("rule", r.Name).Str("period", name).Time("from", from).Time("start", start).Time("to", end).
						Msg("allocation: the period does not run forward from the last; the rule's posting stops here")
				}
				break
			}
			if end.Add(PostingSettle).After(now) {
				break
			}
			_, existing, err := a.post(r, start, AutoActor)
			switch {
			case errors.Is(err, ErrAllocation):
				// Nothing to share by (no tenant consumed anything): the
				// period waits for finance, and the later ones go on.
				if a.tell(r.Name + "\x00" + name) {
					a.Log.Error().Err(err).Str("rule", r.Name).Str("period", name).
						Msg("allocation cannot be shared out; the period is left for finance to post by hand (POST /api/v1/allocations)")
				}
			case err != nil:
				if a.tell(r.Name + "\x00" + name + "\x00" + err.Error()) {
					a.Log.Error().Err(err).Str("rule", r.Name).Str("period", name).Msg("allocation not posted; tried again later")
				}
			case !existing:
				made++
			}
			if err != nil && !errors.Is(err, ErrAllocation) {
				break
			}
			start = end
		}
	}
	return made
}

// nextDue returns when the next period of any rule becomes due after now.
func (a *Allocator) nextDue(now time.Time) time.Time {
	next := now.Add(maxPostingWait)
	for _, r := range a.Config.Allocations() {
		_, end, _ := PeriodOf(r.Period, now.Add(-PostingSettle), a.loc())
		if due := end.Add(PostingSettle); due.Before(next) {
			next = due
		}
	}
	return next
}

// Run posts what is due at once (periods that ended while the gateway was
// down included), then at the end of each period, until ctx is cancelled;
// it returns nil then.
func (a *Allocator) Run(ctx context.Context) error {
	if len(a.Config.Allocations()) == 0 {
		return nil
	}
	for {
		now := a.Now()
		a.PostDue(ctx, now)
		wait := a.nextDue(now).Sub(now)
		if wait < time.Second {
			wait = time.Second
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
