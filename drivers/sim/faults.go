package sim

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// FaultKind is a way a meter's reply goes wrong on a real line.
type FaultKind uint8

// Fault kinds. Except for Exception, the meter has carried out the request
// (a relay command did switch): the reply is lost or damaged on its way
// back, which is the case a gateway must survive by reading back.
const (
	// NoReply sends nothing; the master times out.
	NoReply FaultKind = iota + 1
	// BadCRC sends the right frame with its CRC damaged. Modbus TCP has no
	// CRC; there the MBAP protocol identifier is damaged (0xFFFF) instead,
	// the header field a master must check in its place.
	BadCRC
	// Late sends the right reply after the meter's late delay
	// (SetLateDelay), longer than a master's timeout, so it may land in the
	// next transaction.
	Late
	// Exception refuses the request with the meter's exception code
	// (SetExceptionCode, default 0x04 slave device failure); the request is
	// not carried out.
	Exception
	// Garbage sends random bytes, as many as the right frame has.
	Garbage
	// Truncated sends the first half of the right frame.
	Truncated
	// WrongSlave sends a valid frame from the next address up (247 wraps
	// to 1), as when two meters share an address or a reply is misrouted.
	WrongSlave
)

// FaultKinds returns every fault kind, in the order rates are drawn.
func FaultKinds() []FaultKind {
	return []FaultKind{NoReply, BadCRC, Late, Exception, Garbage, Truncated, WrongSlave}
}

func (k FaultKind) String() string {
	switch k {
	case NoReply:
		return "no-reply"
	case BadCRC:
		return "bad-crc"
	case Late:
		return "late"
	case Exception:
		return "exception"
	case Garbage:
		return "garbage"
	case Truncated:
		return "truncated"
	case WrongSlave:
		return "wrong-slave"
	}
	return fmt.Sprintf("fault(%d)", uint8(k))
}

func (k FaultKind) valid() bool { return k >= NoReply && k <= WrongSlave }

// Stats counts what a meter was asked and what it got wrong on purpose.
type Stats struct {
	Requests uint64               // requests addressed to the meter, broadcasts included
	Faults   map[FaultKind]uint64 // faults injected, by kind
}

// DefaultLateDelay is how late a Late reply comes unless SetLateDelay says
// otherwise: past the 1 s timeout masters commonly use.
const DefaultLateDelay = 1500 * time.Millisecond

// faults is a meter's fault injector. It has its own lock so that knobs
// never wait for a read in progress.
type faults struct {
	mu       sync.Mutex
	rng      *rand.Rand // seeded: a test sees the same faults every run
	queue    []injection
	rates    map[FaultKind]float64
	late     time.Duration
	code     byte
	requests uint64
	counts   map[FaultKind]uint64
}

type injection struct {
	kind FaultKind
	n    int
}

// fault is the decision for one request.
type fault struct {
	kind FaultKind // 0: none
	late time.Duration
	code byte
}

func (f *faults) init(seed int64) {
	f.rng = rand.New(rand.NewPCG(uint64(seed), 0x6D616C6C67726964)) // "mallgrid"
	f.late = DefaultLateDelay
	f.code = ExceptionDeviceFailure
	f.counts = make(map[FaultKind]uint64)
}

// InjectNext makes the meter's next n requests fail with kind, after any
// injections already queued. It fails with ErrFault for an unknown kind or
// n < 1. Injected faults come before random ones (SetFaultRates).
func (m *Meter) InjectNext(kind FaultKind, n int) error {
	if !kind.valid() || n < 1 {
		return fmt.Errorf("%w: inject %v × %d", ErrFault, kind, n)
	}
	f := &m.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue = append(f.queue, injection{kind, n})
	return nil
}

// SetFaultRates makes each request fail with kind k with probability
// rates[k], drawn from the meter's seeded generator (WithSeed), so a test
// run is reproducible. An empty or nil map turns random faults off. It
// fails with ErrFault, changing nothing, for an unknown kind, a rate
// outside [0, 1] or rates adding up to more than 1.
func (m *Meter) SetFaultRates(rates map[FaultKind]float64) error {
	sum := 0.0
	for k, r := range rates {
		if !k.valid() || !(r >= 0 && r <= 1) {
			return fmt.Errorf("%w: rate %v for %v", ErrFault, r, k)
		}
		sum += r
	}
	if sum > 1+1e-9 {
		return fmt.Errorf("%w: rates add up to %v", ErrFault, sum)
	}
	cp := make(map[FaultKind]float64, len(rates))
	for k, r := range rates {
		cp[k] = r
	}
	f := &m.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rates = cp
	return nil
}

// SetLateDelay sets how late a Late reply comes (DefaultLateDelay).
func (m *Meter) SetLateDelay(d time.Duration) {
	f := &m.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	f.late = d
}

// SetExceptionCode sets the code an Exception fault replies with
// (ExceptionDeviceFailure).
func (m *Meter) SetExceptionCode(code byte) {
	f := &m.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	f.code = code
}

// ClearFaults drops queued injections and random rates; counts stay.
func (m *Meter) ClearFaults() {
	f := &m.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue, f.rates = nil, nil
}

// Stats returns the meter's request and fault counts.
func (m *Meter) Stats() Stats {
	f := &m.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	s := Stats{Requests: f.requests, Faults: make(map[FaultKind]uint64, len(f.counts))}
	for k, n := range f.counts {
		s.Faults[k] = n
	}
	return s
}

// next counts one request and decides its fault. The generator is drawn
// once per request whenever rates are set, whether or not an injection
// decides, so the random sequence depends only on the number of requests.
func (f *faults) next(broadcast bool) fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if broadcast {
		return fault{} // nothing goes back, so nothing can go wrong with it
	}
	var kind FaultKind
	if len(f.rates) > 0 {
		u, acc := f.rng.Float64(), 0.0
		for _, k := range FaultKinds() {
			acc += f.rates[k]
			if u < acc {
				kind = k
				break
			}
		}
	}
	if len(f.queue) > 0 {
		kind = f.queue[0].kind
		if f.queue[0].n--; f.queue[0].n == 0 {
			f.queue = f.queue[1:]
		}
	}
	if kind == 0 {
		return fault{}
	}
	f.counts[kind]++
	return fault{kind: kind, late: f.late, code: f.code}
}

// garbage returns n random bytes from the meter's generator.
func (f *faults) garbage(n int) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(f.rng.Uint32())
	}
	return b
}
