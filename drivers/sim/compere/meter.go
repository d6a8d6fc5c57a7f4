package comperesim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/rs/zerolog"

	"mallgrid/drivers/compere"
	"mallgrid/drivers/meter"
	"mallgrid/drivers/sim"
)

// Defaults of Config.
const (
	DefaultRealTime = 30 * time.Second
	DefaultEnergy   = time.Minute
	DefaultBaseW    = 3000
	// PublishTimeout bounds the wait for a PUBACK.
	PublishTimeout = 5 * time.Second
)

// Connection timing; variables so that tests see a reconnection within
// their waits.
var (
	connectTimeout   = 5 * time.Second
	connectRetryWait = time.Second
	maxReconnectWait = 10 * time.Second
	keepAlive        = 30 * time.Second
)

// ErrConfig is returned by New for a configuration it cannot simulate.
var ErrConfig = errors.New("comperesim: configuration")

// Faults are the rates, each in [0, 1], at which a meter behaves as the
// captured logs show. The zero value is a well-behaved meter.
type Faults struct {
	// Duplicate: a message (all its packets) is published again, once or
	// twice more.
	Duplicate float64
	// ZeroFrame: an upload is preceded by a frame of all zeros.
	ZeroFrame float64
	// Split: an upload of a KPM37 or KPM312 is split into the manual's
	// packets; other models always send one packet.
	Split float64
	// Clock2005: the circuit's clock starts 21 years behind, drawn once
	// when the circuit is built.
	Clock2005 float64
	// RelayFail: a relay command is answered 02 and nothing switches.
	RelayFail float64
}

func (f Faults) check() error {
	for _, r := range []struct {
		name string
		v    float64
	}{{"duplicate", f.Duplicate}, {"zero-frame", f.ZeroFrame}, {"split", f.Split}, {"clock-2005", f.Clock2005}, {"relay-fail", f.RelayFail}} {
		if !(r.v >= 0 && r.v <= 1) { // also refuses NaN
			return fmt.Errorf("%w: %s rate %v is not within 0..1", ErrConfig, r.name, r.v)
		}
	}
	return nil
}

// Config describes one simulated device and its broker.
type Config struct {
	Model compere.Model
	// ID is the device's id (a KPM312's first circuit's), 13 characters.
	ID string
	// Broker is tcp://host:port or ssl://host:port; Username and Password
	// are the credentials the meter is configured with.
	Broker, Username, Password string
	// TLS for an ssl:// broker; nil trusts the host's roots.
	TLS *tls.Config
	// RealTime and Energy are the upload intervals; DefaultRealTime and
	// DefaultEnergy if zero. Any positive duration is taken here (tests
	// use short ones); MQTT_COMMOD_SET sets only the meters' values.
	RealTime, Energy time.Duration
	// FirstAfter, when set, is how soon after the first connection the
	// first MQTT_RT_DATA and MQTT_ENY_NOW go out (a demo's meters show at
	// once); 0 waits a whole interval, as the meters do.
	FirstAfter time.Duration
	// BaseW is the base load of the circuits' MallProfile (DefaultBaseW
	// if zero); LoadW, when set, is a constant load instead.
	BaseW float64
	LoadW *float64
	// ImportWh is where the import counters start.
	ImportWh int64
	// Seed seeds the load's noise and the fault generator.
	Seed   int64
	Faults Faults
	// Now is the host's clock (time.Now if nil); Location the zone the
	// meters' clocks are set in (time.Local if nil).
	Now      func() time.Time
	Location *time.Location
	Log      zerolog.Logger
}

// Device is a simulated meter: one circuit, or four for a KPM312.
type Device struct {
	cfg      Config
	circuits []*Circuit
}

// New checks cfg and builds the device's circuits, not yet connected.
func New(cfg Config) (*Device, error) {
	if cfg.Model.Name == "" {
		return nil, fmt.Errorf("%w: no model", ErrConfig)
	}
	if err := cfg.Faults.check(); err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.Broker)
	if err != nil || (u.Scheme != "tcp" && u.Scheme != "ssl") || u.Host == "" {
		return nil, fmt.Errorf("%w: broker %q: want tcp://host:port or ssl://host:port", ErrConfig, cfg.Broker)
	}
	ids, err := cfg.Model.CircuitIDs(cfg.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.RealTime < 0 || cfg.Energy < 0 {
		return nil, fmt.Errorf("%w: negative upload interval", ErrConfig)
	}
	if cfg.RealTime == 0 {
		cfg.RealTime = DefaultRealTime
	}
	if cfg.Energy == 0 {
		cfg.Energy = DefaultEnergy
	}
	if cfg.BaseW == 0 {
		cfg.BaseW = DefaultBaseW
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	if cfg.ImportWh < 0 {
		return nil, fmt.Errorf("%w: import_wh %d is negative", ErrConfig, cfg.ImportWh)
	}
	d := &Device{cfg: cfg}
	for i, id := range ids {
		c, err := newCircuit(&d.cfg, id, i)
		if err != nil {
			return nil, err
		}
		d.circuits = append(d.circuits, c)
	}
	return d, nil
}

// Circuits returns the device's circuits, the first id first.
func (d *Device) Circuits() []*Circuit { return d.circuits }

// Run connects every circuit and serves it until ctx ends; it returns nil
// then, once every goroutine it started has ended.
func (d *Device) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, c := range d.circuits {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.run(ctx)
		}()
	}
	wg.Wait()
	return nil
}

// modbusModel is the drivers/sim model a circuit's load and counters are
// kept by: its phases are what matters.
func modbusModel(phases int) (*meter.Model, error) {
	cat, err := meter.NewCatalogue()
	if err != nil {
		return nil, err
	}
	name := "kpm33b"
	if phases == 1 {
		name = "sdm120"
	}
	return cat.Lookup(name)
}

// Circuit is one meter id of a device: its connection, relay outputs,
// clock and counters.
type Circuit struct {
	cfg   *Config
	id    string
	index int
	meter *sim.Meter
	cmds  chan paho.Message

	mu        sync.Mutex
	outputs   uint32        // bit n-1 set: output n closed
	offset    time.Duration // meter clock − host clock
	realTime  time.Duration
	energy    time.Duration
	rng       *rand.Rand // only the run goroutine draws from it after newCircuit
	intervals chan struct{}
}

func newCircuit(cfg *Config, id string, index int) (*Circuit, error) {
	mm, err := modbusModel(cfg.Model.Phases)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	seed := cfg.Seed*31 + int64(index)
	opts := []sim.Option{sim.WithClock(func() time.Time { return cfg.Now().In(cfg.Location) }), sim.WithSeed(seed), sim.WithBasePower(cfg.BaseW), sim.WithImportWh(cfg.ImportWh)}
	if cfg.LoadW != nil {
		opts = append(opts, sim.WithProfile(sim.Constant(*cfg.LoadW)))
	}
	m, err := sim.NewMeter(mm, 1, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	c := &Circuit{
		cfg: cfg, id: id, index: index, meter: m,
		cmds:      make(chan paho.Message, 16),
		outputs:   1<<cfg.Model.Outputs - 1, // all closed, as delivered
		realTime:  cfg.RealTime,
		energy:    cfg.Energy,
		rng:       rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(index)+1)),
		intervals: make(chan struct{}, 1),
	}
	if c.hit(cfg.Faults.Clock2005) {
		now := cfg.Now().In(cfg.Location)
		c.offset = now.AddDate(-21, 0, 0).Sub(now)
	}
	return c, nil
}

// ID returns the circuit's meter id.
func (c *Circuit) ID() string { return c.id }

// Meter returns the drivers/sim meter that keeps the circuit's load and
// counters: a test's knobs (SetLoad) and probes (Snapshot).
func (c *Circuit) Meter() *sim.Meter { return c.meter }

// Output reports whether relay output n (1 for do1) is closed.
func (c *Circuit) Output(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return n >= 1 && n <= 32 && c.outputs&(1<<(n-1)) != 0
}

// Clock returns the circuit's own clock now.
func (c *Circuit) Clock() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clockLocked()
}

func (c *Circuit) clockLocked() time.Time {
	return c.cfg.Now().In(c.cfg.Location).Add(c.offset)
}

// SetClock sets the circuit's clock to t, as MQTT_SETTIME does.
func (c *Circuit) SetClock(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset = t.Sub(c.cfg.Now())
}

// Intervals returns the circuit's upload intervals.
func (c *Circuit) Intervals() (realTime, energy time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.realTime, c.energy
}

// hit draws whether an event of the given rate happens.
func (c *Circuit) hit(rate float64) bool {
	return rate > 0 && c.rng.Float64() < rate
}

// commandTopics are the topics a circuit subscribes to.
func (c *Circuit) commandTopics() []string {
	x := c.id[compere.IDLen-8:]
	return []string{"MQTT_TELECTRL_" + x, "MQTT_SETTIME_" + x, "MQTT_COMMOD_SET_" + x}
}

// run connects and serves the circuit until ctx ends.
func (c *Circuit) run(ctx context.Context) {
	log := c.cfg.Log.With().Str("meter", c.id).Logger()
	o := paho.NewClientOptions().
		AddBroker(c.cfg.Broker).
		SetClientID(c.id).
		SetUsername(c.cfg.Username).
		SetPassword(c.cfg.Password).
		SetProtocolVersion(4). // MQTT 3.1.1, as the meters speak
		SetCleanSession(true).
		SetOrderMatters(false). // handlers only queue; the run loop answers
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(connectRetryWait).
		SetMaxReconnectInterval(maxReconnectWait).
		SetConnectTimeout(connectTimeout).
		SetWriteTimeout(PublishTimeout).
		SetKeepAlive(keepAlive).
		SetPingTimeout(connectTimeout).
		SetOnConnectHandler(func(pc paho.Client) {
			// Subscriptions are made on every connection: a restarted
			// broker has none of them.
			filters := map[string]byte{}
			for _, t := range c.commandTopics() {
				filters[t] = 1
			}
			tok := pc.SubscribeMultiple(filters, func(_ paho.Client, m paho.Message) {
				select {
				case c.cmds <- m:
				case <-ctx.Done():
				}
			})
			go func() { // the handler must not wait on the connection it runs on
				if !tok.WaitTimeout(connectTimeout) || tok.Error() != nil {
					log.Warn().Err(tok.Error()).Msg("simulated meter: subscribe failed")
					return
				}
				log.Debug().Msg("simulated meter connected")
			}()
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			log.Debug().Err(err).Msg("simulated meter: connection lost; reconnecting")
		})
	if c.cfg.TLS != nil {
		o.SetTLSConfig(c.cfg.TLS)
	}
	pc := paho.NewClient(o)
	tok := pc.Connect() // retried until it succeeds or Disconnect
	// The first uploads count from the first connection, as a meter's do
	// from its power-on: not lost while the broker is still starting.
	for !tok.WaitTimeout(50*time.Millisecond) && ctx.Err() == nil {
	}
	s := &session{c: c, pc: pc, ctx: ctx, log: log}
	s.loop()
	pc.Disconnect(250)
	tok.WaitTimeout(connectTimeout)
}

// session is a circuit's run loop with its connection.
type session struct {
	c   *Circuit
	pc  paho.Client
	ctx context.Context
	log zerolog.Logger
}

func (s *session) loop() {
	rtEvery, enyEvery := s.c.Intervals()
	rt, eny := time.NewTimer(rtEvery), time.NewTimer(enyEvery)
	if first := s.c.cfg.FirstAfter; first > 0 {
		rt.Reset(first)
		eny.Reset(first + first/2) // the values first, then the counters
	}
	defer rt.Stop()
	defer eny.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-rt.C:
			s.publishMessage(s.rtFields)
			rtEvery, _ = s.c.Intervals()
			rt.Reset(rtEvery)
		case <-eny.C:
			s.publishMessage(s.energyFields)
			_, enyEvery = s.c.Intervals()
			eny.Reset(enyEvery)
		case <-s.c.intervals:
			// Only the level set starts over: an upload due of the other
			// is not put off.
			newRT, newEny := s.c.Intervals()
			if newRT != rtEvery {
				rt.Reset(newRT)
			}
			if newEny != enyEvery {
				eny.Reset(newEny)
			}
			rtEvery, enyEvery = newRT, newEny
		case m := <-s.c.cmds:
			s.command(m.Topic(), m.Payload())
		}
	}
}

// publish sends one payload at QoS 1 and waits for its PUBACK, at most
// PublishTimeout.
func (s *session) publish(topic string, payload []byte) {
	tok := s.pc.Publish(topic, 1, false, payload)
	t := time.NewTimer(PublishTimeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			s.log.Debug().Err(err).Str("topic", topic).Msg("simulated meter: publish failed")
		}
	case <-t.C:
		s.log.Debug().Str("topic", topic).Msg("simulated meter: no PUBACK in time")
	case <-s.ctx.Done():
	}
}

// publishMessage publishes an upload — split, preceded by a zero frame,
// repeated, as the fault rates draw — built by fields.
func (s *session) publishMessage(fields func() (compere.Topic, [][]field)) {
	topic, packets := fields()
	f := s.c.cfg.Faults
	clock := s.c.Clock().Format(clockLayout)
	if s.c.hit(f.ZeroFrame) {
		s.publish(string(topic), encode(s.c.id, zeroed(flatten(packets)), clock, "1"))
	}
	split := s.c.cfg.Model.Split && s.c.hit(f.Split)
	var payloads [][]byte
	if split {
		for i, p := range packets {
			end := "0"
			if i == len(packets)-1 {
				end = "1"
			}
			payloads = append(payloads, encode(s.c.id, p, clock, end))
		}
	} else {
		payloads = [][]byte{encode(s.c.id, flatten(packets), clock, "1")}
	}
	times := 1
	if s.c.hit(f.Duplicate) {
		times += 1 + s.c.rng.IntN(2)
	}
	for range times {
		for _, p := range payloads {
			s.publish(string(topic), p)
		}
	}
}

// clockLayout is the meters' "time": yyyyMMddHHmmss.
const clockLayout = "20060102150405"

// command answers one command the broker delivered.
func (s *session) command(topic string, payload []byte) {
	p, err := parseCommand(payload)
	if err != nil || len(p["oprid"]) != compere.OprIDLen {
		s.log.Debug().Str("topic", topic).Msg("simulated meter: command ignored (no 32-character oprid)")
		return
	}
	switch {
	case strings.HasPrefix(topic, "MQTT_TELECTRL_"):
		s.relay(p)
	case strings.HasPrefix(topic, "MQTT_SETTIME_"):
		code := "01"
		t, err := time.ParseInLocation(clockLayout, p["time"], s.c.cfg.Location)
		if err != nil || len(p["time"]) != len(clockLayout) {
			code = "02"
		} else {
			s.c.SetClock(t)
		}
		s.publish(string(compere.TopicTimeRep), encode(s.c.id, []field{str("oprid", p["oprid"]), str("code", code), str("msg", "")}, "", ""))
	case strings.HasPrefix(topic, "MQTT_COMMOD_SET_"):
		code := "02"
		if s.setInterval(p["Cmd"], p["value"]) {
			code = "01"
		}
		s.publish(string(compere.TopicCommodRep), encode(s.c.id, []field{str("oprid", p["oprid"]), str("code", code)}, "", ""))
	}
}

// setInterval applies an MQTT_COMMOD_SET: only the values the meters take.
func (s *session) setInterval(cmd, value string) bool {
	var n int
	if _, err := fmt.Sscan(value, &n); err != nil || fmt.Sprint(n) != value {
		return false
	}
	c := s.c
	c.mu.Lock()
	switch {
	case cmd == "0000" && contains(compere.RealTimeIntervals, time.Duration(n)*time.Second):
		c.realTime = time.Duration(n) * time.Second
	case cmd == "0001" && contains(compere.EnergyIntervals, time.Duration(n)*time.Minute):
		c.energy = time.Duration(n) * time.Minute
	default:
		c.mu.Unlock()
		return false
	}
	c.mu.Unlock()
	select {
	case c.intervals <- struct{}{}:
	default:
	}
	return true
}

func contains(ds []time.Duration, d time.Duration) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}

// relay answers MQTT_TELECTRL: {"doN":"0"|"1","oprid":…}.
func (s *session) relay(p map[string]string) {
	c := s.c
	n, v := 0, ""
	for k, val := range p {
		var x int
		if _, err := fmt.Sscanf(k, "do%d", &x); err == nil && k == fmt.Sprintf("do%d", x) {
			n, v = x, val
		}
	}
	reply := func(code, msg string) {
		s.publish(string(compere.TopicTeleCtrlRep), encode(c.id, []field{
			str(fmt.Sprintf("do%d", n), v), str("oprid", p["oprid"]), str("code", code), str("msg", msg),
		}, "", ""))
	}
	switch {
	case n < 1 || n > c.cfg.Model.Outputs || (v != "0" && v != "1"):
		if n < 1 {
			n, v = 1, p["do1"]
		}
		reply("02", "no such output")
		return
	case c.hit(c.cfg.Faults.RelayFail):
		reply("02", "relay failure")
		return
	}
	c.mu.Lock()
	before := c.outputs
	if v == "1" {
		c.outputs |= 1 << (n - 1)
	} else {
		c.outputs &^= 1 << (n - 1)
	}
	after, all := c.outputs, uint32(1<<c.cfg.Model.Outputs-1)
	clock := c.clockLocked().Format(clockLayout)
	c.mu.Unlock()
	// The load flows only through every output closed.
	c.meter.SetRelay(after == all)
	reply("01", "")
	if after != before && publishesTeleInd(c.cfg.Model) {
		s.publish(string(compere.TopicTeleInd), encode(c.id, []field{str("value", fmt.Sprintf("%08X@%08X", 0, after))}, clock, ""))
	}
}

func publishesTeleInd(m compere.Model) bool {
	for _, t := range m.Publishes {
		if t == compere.TopicTeleInd {
			return true
		}
	}
	return false
}
