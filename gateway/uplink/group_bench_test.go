package uplink_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	_ "time/tzdata" // the site's zone must not depend on the machine's zoneinfo

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"mallgrid/billing"
	"mallgrid/gateway/config"
	"mallgrid/gateway/upfeed"
	"mallgrid/gateway/uplink"
	"mallgrid/store"
)

// The simulated site of the group benchmark: a 2,000-meter mall on eight
// RS-485 buses of 250 meters; 1,800 tenant meters of 1,500 tenants (300
// tenants have two), 200 public meters. A day of it is written through the
// store as the pipeline and the till write it, and the real upfeed.Feed
// turns it into outbox messages at its default period.
const (
	groupMeters       = 2000
	groupTenantMeters = 1800
	groupTenants      = 1500
	groupBuses        = 8
	groupTopUps       = 300 // a day's, between 09:00 and 22:00
	groupGateways     = 50
)

// TestGroupScale measures the uplink of a mall group (issue 15, item 7):
//
//  1. Per gateway per day: one simulated day of a 2,000-meter site written
//     to a real bbolt file with a fake clock — per quarter hour and bus a
//     cycle commit with each meter's reading, its interval energy and a
//     charge per tenant meter (the pipeline posts one per meter per
//     chargeSlot, when the quarter's first reading after its end comes
//     in), 300 top-ups (one in five with an e-invoice request, each with
//     its receipt event), meters dropping off and back, overload alarms,
//     cut-offs — and upfeed.Feed's rounds every 2 s. The messages made in
//     the day are counted by kind, their bytes as upfeed.Envelope makes
//     them.
//  2. Broker throughput: 50 gateways, each its own outbox file (a copy of
//     one filled with an hour of step 1's messages, or the day's with
//     MALLGRID_BENCH_GROUP_BACKLOG=day) and the real uplink.Link, publish
//     to one Debian mosquitto while one consumer (mosquitto_sub, its own
//     process, persistent QoS 1 session on mallgrid/+/up/#) counts every
//     (site, seq). Twice: at the configured backlog_rate (the drain a
//     group sees after a broker outage) and unthrottled (what the broker
//     takes).
//
// Run with MALLGRID_BENCH_GROUP=1 (make bench does): about a minute on a
// 2-core machine, 4½ minutes with the day's backlog (4.5 GB through the
// broker twice). Without /usr/sbin/mosquitto and mosquitto_sub step 2 is
// skipped with a message; -short measures step 1 alone.
func TestGroupScale(t *testing.T) {
	if os.Getenv("MALLGRID_BENCH_GROUP") == "" {
		t.Skip("set MALLGRID_BENCH_GROUP=1 to measure (make bench)")
	}
	day := groupDay(t)
	t.Logf("one gateway's day (2,000 meters, 1,500 tenants, %d top-ups): made in %s", groupTopUps, day.took.Round(time.Second))
	t.Logf("| kind | messages/day | bytes/day | mean bytes |")
	t.Logf("|---|---:|---:|---:|")
	var total, totalBytes int
	for _, k := range upfeed.Kinds {
		n, b := day.count[k], day.bytes[k]
		if n == 0 {
			continue
		}
		total, totalBytes = total+n, totalBytes+b
		t.Logf("| %s | %d | %s | %s |", k, n, groupThousands(b), groupThousands(b/n))
	}
	t.Logf("| **all** | **%d** | **%s** | %s |", total, groupThousands(totalBytes), groupThousands(totalBytes/total))
	// The day must hold what the site did: every quarter's interval
	// energy of 2,000 meters in four parts, a heartbeat each minute, a
	// snapshot each quarter, every charge and top-up in the ledger.
	if day.count[upfeed.KindInterval] != 96*4 || day.count[upfeed.KindHeartbeat] != 1440 || day.count[upfeed.KindAccounts] != 96*3 ||
		day.count[upfeed.KindMeterHealth] != 96*4 {
		t.Errorf("day = %v; want 384 interval, 1440 heartbeat, 288 accounts, 384 meter_health", day.count)
	}
	if want := 96*groupTenantMeters + groupTopUps; day.entries != want {
		t.Errorf("ledger entries sent = %d; want %d (a charge per tenant meter per quarter, every top-up)", day.entries, want)
	}
	live := groupRate{msgs: float64(total) / 86400, bytes: float64(totalBytes) / 86400}
	t.Logf("live, one gateway: %.3f messages/s, %.0f B/s; %d gateways: %.1f messages/s, %.1f kB/s, %.1f GB/day",
		live.msgs, live.bytes, groupGateways, groupGateways*live.msgs, groupGateways*live.bytes/1e3, groupGateways*float64(totalBytes)/1e9)

	if testing.Short() {
		return
	}
	for _, name := range []string{"/usr/sbin/mosquitto", "mosquitto_sub"} {
		if _, err := exec.LookPath(name); err != nil {
			t.Skipf("broker throughput not measured: %s not installed (apt-get install mosquitto mosquitto-clients): %v", name, err)
		}
	}
	backlog, label := day.hour, "an hour (19:00-20:00)"
	if os.Getenv("MALLGRID_BENCH_GROUP_BACKLOG") == "day" {
		backlog, label = day.msgs, "a day"
	}
	tmpl := groupOutbox(t, backlog)
	var backlogBytes int
	for _, m := range backlog {
		backlogBytes += len(groupEnvelope(t, "site-00", m))
	}
	t.Logf("each of %d gateways holds %s of messages: %d messages, %s bytes as published", groupGateways, label, len(backlog), groupThousands(backlogBytes))
	t.Logf("| backlog_rate | gateways × messages | drained (all PUBACKed) | consumed | messages/s | MB/s | consumer lag: most PUBACKed not consumed / last PUBACK to last consumed | gateway CPU | gateway CPU s per gateway-day | mosquitto CPU | mosquitto VmHWM | consumer CPU | reconnects | duplicates | out of order |")
	t.Logf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	var capacity groupRate
	for _, rate := range []int{config.DefaultUplinkBacklogRate, 1_000_000} {
		r := groupDrain(t, tmpl, len(backlog), backlogBytes, rate)
		rateName := strconv.Itoa(rate) + " (default)"
		if rate != config.DefaultUplinkBacklogRate {
			rateName = "unthrottled"
			capacity = groupRate{msgs: r.msgsPerS, bytes: r.bytesPerS}
		}
		// The CPU the links spent on their backlogs, scaled to the bytes of a
		// whole day of one gateway.
		perDay := r.gatewayCPU / 100 * r.consumed.Seconds() / groupGateways * float64(totalBytes) / float64(backlogBytes)
		t.Logf("| %s | %d × %d | %.1f s | %.1f s | %.0f | %.1f | %d msgs / %.2f s | %.0f %% of a core | %.1f s | %.0f %% | %.0f MiB | %.0f %% | %d | %d | %d |",
			rateName, groupGateways, len(backlog), r.drained.Seconds(), r.consumed.Seconds(), r.msgsPerS, r.bytesPerS/1e6,
			r.maxLag, r.endLag.Seconds(), r.gatewayCPU, perDay, r.brokerCPU, float64(r.brokerHWM)/(1<<20), r.consumerCPU, r.reconnects, r.duplicates, r.outOfOrder)
	}
	steady := groupRate{msgs: groupGateways * live.msgs, bytes: groupGateways * live.bytes}
	t.Logf("steady state of %d gateways: %.1f messages/s, %.1f kB/s = %.2f %% of the messages and %.2f %% of the bytes a second the broker took unthrottled",
		groupGateways, steady.msgs, steady.bytes/1e3, 100*steady.msgs/capacity.msgs, 100*steady.bytes/capacity.bytes)
}

// groupRate is a rate of messages and bytes a second.
type groupRate struct{ msgs, bytes float64 }

// groupDayResult is a simulated day's outbox.
type groupDayResult struct {
	msgs    []store.UplinkMessage // made in the day, oldest first
	hour    []store.UplinkMessage // made 19:00-20:00
	count   map[string]int        // messages by kind
	bytes   map[string]int        // their envelopes' bytes by kind
	entries int                   // ledger entries the ledger messages carry
	took    time.Duration
}

var groupZone = func() *time.Location {
	l, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return l
}()

// groupAction is a write of the simulated day at its time.
type groupAction struct {
	at time.Time
	do func()
}

// groupDay writes one day of the simulated site and runs the Feed over it
// with a fake clock; see TestGroupScale.
func groupDay(t *testing.T) groupDayResult {
	t.Helper()
	began := time.Now()
	dayStart := time.Date(2026, 12, 1, 0, 0, 0, 0, groupZone)
	// The feed starts a quarter before the day, so that the day holds 96
	// quarters' interval messages (each is made 2 min after its end).
	clock := dayStart.Add(-store.IntervalLength)
	cfg := &config.Config{Location: groupZone}
	for i := range groupMeters {
		m := config.Meter{ID: fmt.Sprintf("M-%04d", i+1), Role: config.PublicMeter}
		if i < groupTenantMeters {
			m.Role, m.Tenant = config.TenantMeter, groupTenant(i%groupTenants)
		}
		cfg.Meters = append(cfg.Meters, m)
	}
	db, err := store.Open(filepath.Join(t.TempDir(), "site.db"), store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	rng := rand.New(rand.NewPCG(15, 7))

	// The tenants' opening balances, before the uplink's first start:
	// not sent (upfeed's First start), but they make the balances real.
	for i := range groupTenants {
		if _, _, _, err := db.PostTopUpWith(store.Entry{Time: clock.Add(-time.Hour), Account: groupTenant(i), Amount: billing.Money(500+rng.IntN(5000)) * billing.Yuan,
			Ref: fmt.Sprintf("open-%d", i), Channel: "cash", Actor: "till"}, store.TopUpOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	var acts []groupAction
	counter := make([]int64, groupMeters) // each meter's import counter, Wh
	for i := range counter {
		counter[i] = 1_000_000 + int64(rng.IntN(9_000_000))
	}
	offline := map[string]bool{}
	// Per quarter hour and bus: the first cycle after the quarter's end
	// commits the readings, the closed quarter's energy and its charges.
	for q := clock; q.Before(dayStart.Add(24 * time.Hour)); q = q.Add(store.IntervalLength) {
		prev := q.Add(-store.IntervalLength)
		hour := q.In(groupZone).Hour()
		for b := range groupBuses {
			at := q.Add(20*time.Second + time.Duration(b)*7*time.Second)
			acts = append(acts, groupAction{at: at, do: func() {
				c := store.Cycle{}
				for i := b * (groupMeters / groupBuses); i < (b+1)*(groupMeters/groupBuses); i++ {
					m := cfg.Meters[i]
					// Shops draw 0.5-12 kW while open (10:00-22:00), a tenth at night.
					wh := int64(125 + rng.IntN(2875))
					if hour < 10 || hour >= 22 {
						wh /= 10
					}
					from, to := counter[i], counter[i]+wh
					counter[i] = to
					c.Readings = append(c.Readings, store.Reading{Meter: m.ID, Time: at, ImportWh: to, Relay: "closed"})
					c.Energy = append(c.Energy, store.IntervalEnergy{Meter: m.ID, Time: prev.Add(14 * time.Minute), Wh: wh})
					if m.Role == config.TenantMeter {
						window, price := groupWindow(prev)
						f, tt := prev, q
						c.Charges = append(c.Charges, store.Entry{Time: tt, Account: m.Tenant, Kind: store.Charge,
							Amount: -billing.Money(wh * int64(price) / 1000), Meter: m.ID, Chain: 1, FromWh: from, ToWh: to, Wh: wh,
							From: &f, To: &tt, Window: window, UnitPrice: price, Actor: "gateway"})
					}
				}
				// A meter or two a bus drops off or comes back in a day; an
				// overload alarm is raised and cleared now and then.
				if rng.IntN(48) == 0 {
					i := b*(groupMeters/groupBuses) + rng.IntN(groupMeters/groupBuses)
					id, kind := cfg.Meters[i].ID, "meter_offline"
					if offline[id] {
						kind = "meter_online"
					}
					offline[id] = !offline[id]
					c.Events = append(c.Events, store.Event{Time: at, Kind: kind, Meter: id, Bus: fmt.Sprintf("rs485-%d", b+1),
						Text: id + ": no answer for 3 cycles", Args: map[string]string{"meter": id}})
				}
				if rng.IntN(64) == 0 {
					i := b*(groupMeters/groupBuses) + rng.IntN(groupTenantMeters/groupBuses)
					m := cfg.Meters[i]
					for _, kind := range []string{"overload", "overload_cleared"} {
						c.Events = append(c.Events, store.Event{Time: at, Kind: kind, Meter: m.ID, Tenant: m.Tenant, Bus: fmt.Sprintf("rs485-%d", b+1),
							Text: m.ID + ": current above 95 % of rated for 60 s", Args: map[string]string{"meter": m.ID, "current_a": "61.2", "rated_a": "63"}})
					}
				}
				if _, err := db.CommitCycle(c); err != nil {
					t.Fatal(err)
				}
			}})
		}
		// A tenant or so a quarter hour runs out in the evening: cut off.
		if hour >= 18 && rng.IntN(3) == 0 {
			tenant := groupTenant(rng.IntN(groupTenants))
			acts = append(acts, groupAction{at: q.Add(90 * time.Second), do: func() {
				if _, err := db.CommitCycle(store.Cycle{Events: []store.Event{{Time: q.Add(90 * time.Second), Kind: "cut_off", Tenant: tenant,
					Text: tenant + ": balance -0.12 below the cut-off line; relays opened", Args: map[string]string{"tenant": tenant, "balance": "-0.12"}}}}); err != nil {
					t.Fatal(err)
				}
			}})
		}
	}
	for n := range groupTopUps {
		at := dayStart.Add(9*time.Hour + time.Duration(rng.Int64N(int64(13*time.Hour))))
		tenant := groupTenant(rng.IntN(groupTenants))
		amount := billing.Money(100*(1+rng.IntN(20))) * billing.Yuan
		channel := []string{"wechat", "alipay", "cash", "unionpay"}[rng.IntN(4)]
		var inv *store.Invoice
		if n%5 == 0 {
			inv = &store.Invoice{Title: "Riverside Trading Co., Ltd. (" + tenant + ")", TaxID: "91310000MA1K4XXX" + strconv.Itoa(10+n%90), Email: "finance@" + strings.ToLower(tenant) + ".example.cn"}
		}
		acts = append(acts, groupAction{at: at, do: func() {
			ref := fmt.Sprintf("%s-20261201-%06d", channel, n)
			if _, _, _, err := db.PostTopUpWith(store.Entry{Time: at, Account: tenant, Kind: store.TopUp, Amount: amount, Ref: ref, Channel: channel, Actor: "till"},
				store.TopUpOptions{Invoice: inv, Receipt: func(e store.Entry) store.Event {
					return store.Event{Time: at, Kind: "topup_receipt", Tenant: tenant,
						Text: fmt.Sprintf("%s: top-up of %s received (%s, ref %s, receipt %d); balance %s", tenant, e.Amount, channel, ref, e.ID, e.Balance),
						Args: map[string]string{"tenant_name": tenant, "amount": e.Amount.String(), "channel": channel, "ref": ref,
							"receipt": strconv.FormatUint(e.ID, 10), "balance": e.Balance.String()}}
				}}); err != nil {
				t.Fatal(err)
			}
		}})
	}
	slices.SortStableFunc(acts, func(a, b groupAction) int { return a.at.Compare(b.at) })

	feed := &upfeed.Feed{DB: db, SiteID: "site-00", Config: cfg, Now: func() time.Time { return clock }, Version: "1.15.0", Log: zerolog.Nop(),
		Accounts: func() ([]upfeed.Account, error) {
			accts, err := db.Accounts()
			if err != nil {
				return nil, err
			}
			out := make([]upfeed.Account, 0, len(accts))
			for _, a := range accts {
				state, relay := "normal", "closed"
				if a.Balance < 0 {
					state, relay = "cut_off", "open"
				}
				out = append(out, upfeed.Account{Tenant: a.ID, Balance: a.Balance, State: state, Relay: relay})
			}
			return out, nil
		},
		Meters: func() []upfeed.MeterHealth {
			out := make([]upfeed.MeterHealth, len(cfg.Meters))
			for i, m := range cfg.Meters {
				out[i] = upfeed.MeterHealth{Meter: m.ID, Online: !offline[m.ID], LastSeen: clock.Add(-time.Duration(i%60) * time.Second), Errors: int64(i % 7)}
			}
			return out
		},
		Buses: func() []upfeed.Bus {
			out := make([]upfeed.Bus, groupBuses)
			for b := range out {
				out[b] = upfeed.Bus{Name: fmt.Sprintf("rs485-%d", b+1), Up: true}
			}
			return out
		},
	}
	res := groupDayResult{count: map[string]int{}, bytes: map[string]int{}}
	// The link is up all day: what a round made is taken and acknowledged
	// before the next, as the broker's PUBACKs would (a backlog left
	// standing would change what the feed makes: fewer heartbeats, a
	// backlog alarm).
	var sent uint64
	take := func() {
		for {
			page, err := db.UplinkAfter(sent, 500)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				return
			}
			seqs := make([]uint64, len(page))
			for i, m := range page {
				seqs[i] = m.Seq
				if m.Time.Before(dayStart) {
					continue // made in the quarter before the day
				}
				res.msgs = append(res.msgs, m)
				if h := m.Time.In(groupZone).Hour(); h == 19 {
					res.hour = append(res.hour, m)
				}
				res.count[m.Kind]++
				res.bytes[m.Kind] += len(groupEnvelope(t, "site-00", m))
				if m.Kind == upfeed.KindLedger {
					res.entries += bytes.Count(m.Data, []byte(`"balance":`))
				}
			}
			if err := db.AckUplink(seqs...); err != nil {
				t.Fatal(err)
			}
			sent = page[len(page)-1].Seq
		}
	}
	ctx := context.Background()
	end := dayStart.Add(24 * time.Hour)
	for ; clock.Before(end); clock = clock.Add(upfeed.DefaultPeriod) {
		for len(acts) > 0 && !acts[0].at.After(clock) {
			acts[0].do()
			acts = acts[1:]
		}
		for more := true; more; {
			if more, err = feed.Round(ctx); err != nil {
				t.Fatal(err)
			}
		}
		take()
	}
	res.took = time.Since(began)
	return res
}

// groupTenant names the i-th tenant.
func groupTenant(i int) string { return fmt.Sprintf("T-%04d", i+1) }

// groupWindow is a time-of-use window and its price (yuan per kWh as
// billing.Price) at t: peak, flat, valley.
func groupWindow(t time.Time) (string, billing.Price) {
	switch h := t.In(groupZone).Hour(); {
	case h >= 8 && h < 11, h >= 18 && h < 21:
		return "peak", billing.Price(1_120_000)
	case h >= 23 || h < 7:
		return "valley", billing.Price(380_000)
	default:
		return "flat", billing.Price(760_000)
	}
}

func groupEnvelope(t *testing.T, site string, m store.UplinkMessage) []byte {
	t.Helper()
	b, err := upfeed.Envelope(site, m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// groupOutbox writes msgs anew (seqs from 1) into an outbox file of its
// own, the template each gateway's file is copied from.
func groupOutbox(t *testing.T, msgs []store.UplinkMessage) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "outbox.db")
	db, err := store.Open(path, store.Options{LockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(msgs); i += 500 {
		chunk := slices.Clone(msgs[i:min(i+500, len(msgs))])
		for j := range chunk {
			chunk[j].Seq = 0
		}
		if _, err := db.EnqueueUplink(chunk, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// groupDrainResult is one run of the 50 gateways' backlogs through the
// broker.
type groupDrainResult struct {
	drained, consumed   time.Duration
	msgsPerS, bytesPerS float64
	maxLag              int64         // most messages PUBACKed and not yet consumed
	endLag              time.Duration // from the last PUBACK to the last message consumed
	gatewayCPU          float64       // % of one core: this process (50 links, the consumer's reader)
	brokerCPU           float64       // % of one core: mosquitto
	consumerCPU         float64       // % of one core: mosquitto_sub
	brokerHWM           int64         // bytes: mosquitto's VmHWM, its most resident memory
	reconnects          int64
	duplicates          int
	outOfOrder          int
}

// groupDrain starts a broker and a consumer, copies the template outbox to
// each gateway, runs the 50 links at rate and waits until every (site,
// seq) has been consumed.
func groupDrain(t *testing.T, tmpl string, perSite, perSiteBytes, rate int) groupDrainResult {
	t.Helper()
	dir := t.TempDir()
	broker := groupBroker(t, dir)
	raw, err := os.ReadFile(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	dbs := make([]*store.DB, groupGateways)
	for g := range dbs {
		path := filepath.Join(dir, fmt.Sprintf("site-%02d.db", g))
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		if dbs[g], err = store.Open(path, store.Options{LockTimeout: time.Second}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = dbs[g].Close() })
	}
	cons := groupConsume(t, broker, perSite)

	links := make([]*uplink.Link, groupGateways)
	for g := range links {
		cfg := config.Uplink{Broker: "tcp://" + broker.addr, SiteID: fmt.Sprintf("site-%02d", g), BacklogRate: rate, Inflight: config.DefaultUplinkInflight}
		if links[g], err = uplink.NewLink(cfg, dbs[g], nil, upfeed.Envelope, zerolog.Nop(), time.Now); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	cpu0, bcpu0, ccpu0 := groupSelfCPU(t), groupProcCPU(t, broker.cmd.Process.Pid), groupProcCPU(t, cons.cmd.Process.Pid)
	start := time.Now()
	for _, l := range links {
		wg.Add(1)
		go func() { defer wg.Done(); _ = l.Run(ctx) }()
	}
	total := int64(groupGateways * perSite)
	var res groupDrainResult
	var lastAck time.Time
	deadline := start.Add(4 * time.Minute)
	lastGot, lastProgress := int64(0), start
	for {
		// Status reads each outbox's oldest message: four looks a second
		// keep that out of the gateways' CPU figure.
		time.Sleep(250 * time.Millisecond)
		var acked, depth int64
		for _, l := range links {
			s, err := l.Status()
			if err != nil {
				t.Fatal(err)
			}
			acked, depth = acked+s.Acked, depth+s.Depth
		}
		got := cons.unique.Load()
		res.maxLag = max(res.maxLag, acked-got)
		if depth == 0 && res.drained == 0 {
			res.drained, lastAck = time.Since(start), time.Now()
		}
		if got == total {
			res.consumed = time.Since(start)
			break
		}
		if got != lastGot {
			lastGot, lastProgress = got, time.Now()
		}
		// Every message PUBACKed and none consumed for 20 s: the broker
		// dropped them (a full queue of the consumer's session).
		if time.Now().After(deadline) || depth == 0 && time.Since(lastProgress) > 20*time.Second {
			t.Fatalf("after %s: %d of %d messages consumed, %d in the outboxes", time.Since(start).Round(time.Second), got, total, depth)
		}
	}
	if res.drained == 0 { // consumed before the last acknowledgement was written
		res.drained, lastAck = res.consumed, time.Now()
	}
	res.endLag = max(0, start.Add(res.consumed).Sub(lastAck))
	elapsed := res.consumed
	res.gatewayCPU = 100 * (groupSelfCPU(t) - cpu0).Seconds() / elapsed.Seconds()
	res.brokerCPU = 100 * (groupProcCPU(t, broker.cmd.Process.Pid) - bcpu0).Seconds() / elapsed.Seconds()
	res.consumerCPU = 100 * (groupProcCPU(t, cons.cmd.Process.Pid) - ccpu0).Seconds() / elapsed.Seconds()
	res.brokerHWM = groupProcHWM(t, broker.cmd.Process.Pid)
	res.msgsPerS = float64(total) / elapsed.Seconds()
	res.bytesPerS = float64(groupGateways*perSiteBytes) / elapsed.Seconds()
	for _, l := range links {
		s, _ := l.Status()
		res.reconnects += s.Connects - 1
	}
	res.duplicates, res.outOfOrder = cons.check(t)
	return res
}

// groupMosquitto is a mosquitto daemon on 127.0.0.1.
type groupMosquitto struct {
	addr string
	cmd  *exec.Cmd
}

// groupBroker starts mosquitto as a group would run it for the test:
// anonymous on loopback, no persistence (its autosave does not weigh on a
// throughput), and no cap on the messages queued for a slow consumer
// (max_queued_messages 0): the default 1,000 would drop a consumer's QoS 1
// messages the moment it fell behind the 50 backlogs.
func groupBroker(t *testing.T, dir string) *groupMosquitto {
	t.Helper()
	return groupRunMosquitto(t, dir, "allow_anonymous true\npersistence false\nmax_queued_messages 0\nmax_inflight_messages 100\n")
}

// groupRunMosquitto starts mosquitto on a free port of 127.0.0.1 with conf
// (its settings but the listener and the log) and stops it at the test's
// end.
func groupRunMosquitto(t *testing.T, dir, conf string) *groupMosquitto {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)
	conf = fmt.Sprintf("listener %s 127.0.0.1\n%slog_dest file %s\nlog_type error\nlog_type warning\nuser root\n",
		port, conf, filepath.Join(dir, "mosquitto.log"))
	if err := os.WriteFile(filepath.Join(dir, "mosquitto.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &groupMosquitto{addr: addr, cmd: exec.Command("/usr/sbin/mosquitto", "-c", filepath.Join(dir, "mosquitto.conf"))}
	var stderr bytes.Buffer
	b.cmd.Stderr = &stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("mosquitto: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		if t.Failed() {
			raw, _ := os.ReadFile(filepath.Join(dir, "mosquitto.log"))
			t.Logf("mosquitto.log:\n%s", raw)
		}
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = b.cmd.Process.Kill()
			<-done
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return b
		}
		select {
		case <-done:
			t.Fatalf("mosquitto exited at start: %s", stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto not listening on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// groupConsumer is mosquitto_sub on mallgrid/+/up/# (persistent session,
// QoS 1) with this test reading its lines and noting every (site, seq).
type groupConsumer struct {
	cmd     *exec.Cmd
	perSite int
	unique  atomic.Int64

	mu   sync.Mutex
	seen map[string][]bool
	last map[string]uint64
	dups int
	ooo  int
	bad  []string
}

// groupConsume starts the consumer and waits until its subscription
// delivers: a probe is published until it comes out.
func groupConsume(t *testing.T, b *groupMosquitto, perSite int) *groupConsumer {
	t.Helper()
	_, port, _ := net.SplitHostPort(b.addr)
	c := &groupConsumer{perSite: perSite, seen: map[string][]bool{}, last: map[string]uint64{}}
	c.cmd = exec.Command("mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-i", "group-consumer", "-c", "-q", "1", "-v",
		"-t", "mallgrid/+/up/#")
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	c.cmd.Stderr = &stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("mosquitto_sub: %v", err)
	}
	probed := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); c.read(out, probed) }()
	t.Cleanup(func() {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		<-done
		_ = c.cmd.Wait()
	})
	pc := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + b.addr).SetClientID("group-probe"))
	if tok := pc.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("probe connect: %v", tok.Error())
	}
	defer pc.Disconnect(100)
	for deadline := time.Now().Add(10 * time.Second); ; {
		pc.Publish("mallgrid/probe/up/probe", 0, false, "probe").WaitTimeout(time.Second)
		select {
		case <-probed:
			return c
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the consumer never received the probe: %s", stderr.String())
		}
	}
}

// read takes "topic payload" lines. The envelope starts
// {"v":1,"site":"…","seq":N, — fixed by upfeed.Envelope — so the site and
// seq are read from its head, cheaply: the consumer's CPU is mosquitto_sub's,
// not a JSON decoder's in this process beside the gateways.
func (c *groupConsumer) read(r io.Reader, probed chan struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 8<<20)
	var once sync.Once
	for sc.Scan() {
		line := sc.Bytes()
		topic, payload, _ := bytes.Cut(line, []byte(" "))
		parts := strings.Split(string(topic), "/")
		if len(parts) != 4 {
			continue
		}
		switch parts[3] {
		case "probe":
			once.Do(func() { close(probed) })
			continue
		case "status": // retained online/offline, outside the seqs
			continue
		}
		site, seq, ok := groupHead(payload)
		c.mu.Lock()
		if !ok || site != parts[1] || seq == 0 || seq > uint64(c.perSite) {
			c.bad = append(c.bad, string(line[:min(len(line), 120)]))
			c.mu.Unlock()
			continue
		}
		s := c.seen[site]
		if s == nil {
			s = make([]bool, c.perSite+1)
			c.seen[site] = s
		}
		switch {
		case s[seq]:
			c.dups++
		default:
			s[seq] = true
			if seq != c.last[site]+1 {
				c.ooo++
			}
			c.last[site] = max(c.last[site], seq)
			c.unique.Add(1)
		}
		c.mu.Unlock()
	}
}

// groupHead reads site and seq from an envelope's head.
func groupHead(p []byte) (site string, seq uint64, ok bool) {
	rest, ok := bytes.CutPrefix(p, []byte(`{"v":1,"site":"`))
	if !ok {
		return "", 0, false
	}
	i := bytes.IndexByte(rest, '"')
	if i < 0 {
		return "", 0, false
	}
	site, rest = string(rest[:i]), rest[i+1:]
	rest, ok = bytes.CutPrefix(rest, []byte(`,"seq":`))
	if !ok {
		return "", 0, false
	}
	j := bytes.IndexByte(rest, ',')
	if j < 0 {
		return "", 0, false
	}
	n, err := strconv.ParseUint(string(rest[:j]), 10, 64)
	return site, n, err == nil
}

// check fails the test unless every site's seqs 1..perSite arrived, and
// returns the duplicates and the arrivals out of seq order.
func (c *groupConsumer) check(t *testing.T) (dups, ooo int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.bad) > 0 {
		t.Errorf("%d messages not of the envelope's form, e.g. %q", len(c.bad), c.bad[0])
	}
	if len(c.seen) != groupGateways {
		t.Errorf("messages of %d sites; want %d", len(c.seen), groupGateways)
	}
	for site, s := range c.seen {
		for seq := 1; seq <= c.perSite; seq++ {
			if !s[seq] {
				t.Errorf("site %s: seq %d never arrived", site, seq)
				break
			}
		}
	}
	return c.dups, c.ooo
}

// groupSelfCPU is this process's user and system CPU time.
func groupSelfCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// groupProcCPU is pid's utime+stime from /proc (clock ticks of 10 ms,
// USER_HZ on Linux).
func groupProcCPU(t *testing.T, pid int) time.Duration {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name may hold spaces: the fields start after its ')'.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// groupProcHWM is pid's VmHWM (its most resident memory) in bytes.
func groupProcHWM(t *testing.T, pid int) int64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("/proc/%d/status has no VmHWM", pid)
	return 0
}

// groupThousands writes n with thousands separators.
func groupThousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
