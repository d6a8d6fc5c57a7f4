package demo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"mallgrid/billing"
	"mallgrid/billing/tariff"
	"mallgrid/gateway/accounts"
	"mallgrid/gateway/config"
	"mallgrid/gateway/web"
	"mallgrid/store"
)

// Pace is how fast the demo's story plays, counted from the start. The
// zero Pace is DefaultPace.
type Pace struct {
	// Warn is when the near tenant's balance reaches its warning_1 level.
	Warn time.Duration
	// RunOut is when the low tenant's credit is used up; its rating's
	// grace runs from then until the cut-off.
	RunOut time.Duration
	// Show is how long the cut-off stays on the page before the demo tops
	// the tenant up.
	Show time.Duration
}

// DefaultPace fits the story of configs/demo.yaml into two minutes: a
// warning at about 30 s, credit used up at about 45 s, the cut-off after
// the 30 s grace of rating C (75 s, up to a poll interval later), the
// top-up and the restore 15 s after that.
func DefaultPace() Pace {
	return Pace{Warn: 30 * time.Second, RunOut: 45 * time.Second, Show: 15 * time.Second}
}

// lowLoadW is the constant load of the tenant who runs out: a hot pot
// restaurant at dinner, an induction hob at each of thirty tables plus the
// kitchen's extraction. At the demo's 0.40–1.45 per kWh that is 0.30 to
// 1.09 yuan a minute, so the balance on the page visibly falls at every
// poll and a balance of under a yuan runs out within the minute.
const lowLoadW = 45_000

// topUpStep rounds the demo's own top-up up, as people pay round sums.
const topUpStep = 100 * billing.Yuan

// comfortable are the opening balances of the tenants without a part:
// round sums a shop prepays, picked by tenant id so that every run is the
// same.
func comfortable() []billing.Money {
	return []billing.Money{800 * billing.Yuan, 1000 * billing.Yuan, 1500 * billing.Yuan,
		2000 * billing.Yuan, 3000 * billing.Yuan, 5000 * billing.Yuan}
}

// part is a tenant with a role in the story.
type part struct {
	tenant  config.Tenant
	meters  []string // the tenant's own meters
	loadW   int64    // the constant load of each of them
	opening billing.Money
	cost    billing.Money // of the part's time (Warn or RunOut) of power
	rating  ratingLevels
}

// ratingLevels are the levels of a tenant's credit rating the story uses.
type ratingLevels struct {
	warning1, overdraft, restore billing.Money
	grace                        time.Duration
}

// story is one run's cast and script: the opening balance of every
// tenant, and for the parts, their loads and what the demo does.
type story struct {
	pace      Pace
	near, low *part // nil: no tenant can play the part
	openings  map[string]billing.Money
	// topUp is the demo's top-up of the low tenant, with ref.
	topUp billing.Money
	ref   string
	// kept is set when the database (--db) was opened by an earlier run:
	// its balances are as that run left them, so the story, cast for
	// fresh openings, would not play as announced.
	kept bool
}

// loads returns the constant load of every meter of a part, by meter id;
// the other meters follow the mall's day.
func (s *story) loads() map[string]float64 {
	out := make(map[string]float64)
	for _, p := range []*part{s.near, s.low} {
		if p == nil {
			continue
		}
		for _, id := range p.meters {
			out[id] = float64(p.loadW)
		}
	}
	return out
}

// castStory picks the parts from cfg and works out the opening balances
// at now. The low tenant is the one with a relay that runs out soonest: the
// least overdraft, then the shortest grace, then the first in the file; the
// near tenant is the first other tenant with a credit rating, a tariff and
// a meter. Either part may be left empty (nil) when no tenant fits.
func castStory(cfg *config.Config, pace Pace, now time.Time) (*story, error) {
	s := &story{pace: pace, openings: make(map[string]billing.Money)}
	var cands []*part
	relay := make(map[string]bool)
	for _, t := range cfg.Tenants {
		r, ok := cfg.RatingOf(t.ID)
		if _, billed := cfg.TariffOf(t.ID); !ok || !billed {
			continue
		}
		p := &part{tenant: t, rating: ratingLevels{r.Warning1(), r.Overdraft(), r.Restore(), r.Grace()}}
		for _, m := range cfg.Meters {
			if m.Role != config.TenantMeter || m.Tenant != t.ID {
				continue
			}
			if b, ok := cfg.Bus(m.Bus); ok && b.IsMQTT() {
				// A meter reporting every 30 s over MQTT is too slow for a
				// two-minute story: its tenant is a customer, not a part.
				continue
			}
			p.meters = append(p.meters, m.ID)
			if model, err := cfg.ModelOf(m); err == nil && model.Relay != nil {
				relay[t.ID] = true
			}
		}
		if len(p.meters) > 0 {
			cands = append(cands, p)
		}
	}
	for _, p := range cands {
		if !relay[p.tenant.ID] {
			continue
		}
		if s.low == nil || cmp.Or(cmp.Compare(p.rating.overdraft, s.low.rating.overdraft), cmp.Compare(p.rating.grace, s.low.rating.grace)) < 0 {
			s.low = p
		}
	}
	for _, p := range cands {
		if p != s.low {
			s.near = p
			break
		}
	}

	if p := s.low; p != nil {
		p.loadW = lowLoadW
		cost, err := costOf(cfg, p, pace.RunOut, now)
		if err != nil {
			return nil, err
		}
		p.cost = cost
		// Exhausted is below −overdraft: with an overdraft the credit is
		// used as well, and a tenant with more credit than RunOut's worth
		// of power starts at a fen and takes longer (the banner says so).
		p.opening = max(cost-p.rating.overdraft, billing.Fen)
		s.topUp = roundUp(max(p.rating.warning1, p.rating.restore)+topUpStep, topUpStep)
		s.ref = "DEMO-TOPUP-" + p.tenant.ID + "-" + now.UTC().Format("20060102T150405Z")
	}
	if p := s.near; p != nil {
		p.loadW = categoryLoad(p.tenant)
		cost, err := costOf(cfg, p, pace.Warn, now)
		if err != nil {
			return nil, err
		}
		p.cost = cost
		p.opening = p.rating.warning1 + cost
	}
	steps := comfortable()
	for _, t := range cfg.Tenants {
		amount := steps[seedOf(t.ID)%int64(len(steps))]
		if r, ok := cfg.RatingOf(t.ID); ok && amount <= r.Warning1()+topUpStep {
			amount = roundUp(r.Warning1()+2*topUpStep, topUpStep)
		}
		s.openings[t.ID] = amount
	}
	for _, p := range []*part{s.near, s.low} {
		if p != nil {
			s.openings[p.tenant.ID] = p.opening
		}
	}
	return s, nil
}

// categoryLoad is the simulated daytime load in W of a tenant's category.
func categoryLoad(t config.Tenant) int64 {
	switch t.Category {
	case "restaurant":
		return 9000
	case "retail":
		return 2500
	case "supermarket":
		return 30000
	case "entertainment":
		return 15000
	case "services":
		return 3500
	}
	return 3000
}

// costOf is what part p's meters draw in d from now at its tariff, rounded
// up to the fen: the pipeline prices the same energy the same way.
func costOf(cfg *config.Config, p *part, d time.Duration, now time.Time) (billing.Money, error) {
	tf, ok := cfg.TariffOf(p.tenant.ID)
	if !ok {
		return 0, fmt.Errorf("tenant %s has no tariff", p.tenant.ID)
	}
	wh := p.loadW * int64(len(p.meters)) * int64(d) / int64(time.Hour)
	from := now.In(cfg.Location)
	// The month's energy so far is left out: only a tiered tariff uses it,
	// and the story's minute of power is priced at its first tier.
	parts, err := tf.Split(from, from.Add(d), wh, 0)
	if err != nil {
		return 0, fmt.Errorf("price the demo's load of %s: %w", p.tenant.ID, err)
	}
	return partsCost(parts)
}

func partsCost(parts []tariff.Part) (billing.Money, error) {
	var nano int64 // billing.Price.Cost is in nano-yuan
	for _, pt := range parts {
		c, err := pt.Price.Cost(pt.Wh)
		if err != nil {
			return 0, err
		}
		nano += c
	}
	perFen := int64(billing.Fen) * 1000
	return billing.Money((nano+perFen-1)/perFen) * billing.Fen, nil
}

// roundUp rounds m up to a multiple of step.
func roundUp(m, step billing.Money) billing.Money {
	return (m + step - 1) / step * step
}

// openingRef is the payment reference of tenant id's opening top-up: the
// same in every run, so that a demo restarted on its database credits
// none of them again.
func openingRef(id string) string { return "DEMO-OPENING-" + id }

// open posts every tenant's opening balance to db as a top-up, through
// the same ledger the API's top-ups go through, before the gateway starts:
// its first account evaluation then sees the balances, not empty accounts.
// A reference already posted is credited nothing.
func (s *story) open(ctx context.Context, cfg *config.Config, db *store.DB, now func() time.Time, log zerolog.Logger) error {
	ledger := &accounts.Ledger{DB: db, Config: cfg, Now: now}
	posted := 0
	for _, t := range cfg.Tenants {
		req := web.TopUpRequest{Amount: s.openings[t.ID].String(), Ref: openingRef(t.ID), Channel: "bank"}
		_, existing, err := ledger.TopUp(ctx, t.ID, req, "demo")
		if existing || errors.Is(err, web.ErrConflict) {
			s.kept = true
		}
		switch {
		case errors.Is(err, web.ErrConflict):
			// An earlier run opened the account at another price of the
			// hour: it is open, and stays as it is.
			log.Info().Str("tenant", t.ID).Str("ref", req.Ref).Msg("opening balance posted by an earlier run, at another amount; kept")
		case err != nil:
			return fmt.Errorf("opening balance of %s: %w", t.ID, err)
		case !existing:
			posted++
		}
	}
	log.Info().Int("posted", posted).Int("tenants", len(cfg.Tenants)).Msg("opening balances")
	return nil
}

// warnProtected logs when the story's cut-off would fall in protected
// hours, which hold it: configs/demo.yaml has none, a -c file may.
func (s *story) warnProtected(cfg *config.Config, now time.Time, log zerolog.Logger) {
	if s.low == nil {
		return
	}
	at := now.Add(s.pace.RunOut + s.low.rating.grace)
	if prot := cfg.Protected(); prot.Contains(at) {
		log.Warn().Str("tenant", s.low.tenant.ID).Time("until", prot.EndOf(at)).
			Msg("the story's cut-off falls in protected hours (protected_hours): it is held until they end")
	}
}

// banner tells a person where to look, how to change things, and what is
// about to happen.
func (s *story) banner(w io.Writer, url, token, user, password string) {
	var b strings.Builder
	fmt.Fprintf(&b, "mallgrid demo: status page on %s (Ctrl-C to stop); log in as %s, password %s\n", url, user, password)
	fmt.Fprintf(&b, "mallgrid demo: API token %s (admin), e.g.\n", token)
	fmt.Fprintf(&b, "  curl -H 'Authorization: Bearer %s' -d '{\"amount\":\"100.00\",\"ref\":\"PAY-1\",\"channel\":\"cash\"}' %sapi/v1/accounts/%s/topups\n",
		token, url, s.exampleTenant())
	if s.kept {
		b.WriteString("mallgrid demo: this database was opened by an earlier run (--db): its accounts stand as that run left them,\n" +
			"  and the story (a warning, a cut-off, a top-up that restores) plays only on a fresh database\n")
		_, _ = io.WriteString(w, b.String())
		return
	}
	if s.near != nil || s.low != nil {
		b.WriteString("mallgrid demo: the story (on the page and in the event stream):\n")
	}
	if p := s.near; p != nil {
		fmt.Fprintf(&b, "  - %s (%s) opens at %s and reaches its warning level %s in about %s\n",
			p.tenant.Name, p.tenant.ID, p.opening, p.rating.warning1, s.pace.Warn)
	}
	if p := s.low; p != nil {
		fmt.Fprintf(&b, "  - %s (%s) opens at %s, runs out in about %s and is cut off %s later (its grace)\n",
			p.tenant.Name, p.tenant.ID, p.opening, s.runOut(), p.rating.grace)
		fmt.Fprintf(&b, "  - %s after the cut-off the demo tops it up with %s (wechat, ref %s), which restores it\n",
			s.pace.Show, s.topUp, s.ref)
	}
	_, _ = io.WriteString(w, b.String())
}

// runOut is about when the low tenant's credit is used up: RunOut, or
// later when its overdraft is more than RunOut's worth of power (an
// estimate for the banner, so a float is fine).
func (s *story) runOut() time.Duration {
	p := s.low
	if p.cost <= 0 || p.opening+p.rating.overdraft <= p.cost {
		return s.pace.RunOut
	}
	f := float64(p.opening+p.rating.overdraft) / float64(p.cost)
	return time.Duration(f * float64(s.pace.RunOut)).Round(time.Second)
}

// exampleTenant is a tenant for the banner's example top-up: one without
// a part, whose top-up does not change the story.
func (s *story) exampleTenant() string {
	ids := make([]string, 0, len(s.openings))
	for id := range s.openings {
		if (s.near == nil || id != s.near.tenant.ID) && (s.low == nil || id != s.low.tenant.ID) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if len(ids) == 0 {
		return "T-101"
	}
	return ids[0]
}
