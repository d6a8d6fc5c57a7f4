package sim

import (
	"fmt"
	"sync"
)

// Bus is a multi-drop line of simulated meters, found by their Modbus
// address. One Bus may be served on several streams and listeners at once;
// its meters then answer all of them. Its methods are safe for concurrent
// use.
type Bus struct {
	mu     sync.RWMutex
	meters []*Meter
	wire   WireTiming
}

// NewBus returns a bus with meters on it. It fails with ErrAddressTaken if
// two meters share an address.
func NewBus(meters ...*Meter) (*Bus, error) {
	b := &Bus{}
	for _, m := range meters {
		if err := b.Add(m); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Add puts m on the bus. It fails with ErrAddressTaken if a meter already
// answers at m's address.
func (b *Bus) Add(m *Meter) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	addr := m.Address()
	if b.meterLocked(addr) != nil {
		return fmt.Errorf("%w: %d", ErrAddressTaken, addr)
	}
	b.meters = append(b.meters, m)
	return nil
}

// Remove takes the meter at addr off the bus, as if its cable were pulled,
// and returns it (nil if there was none).
func (b *Bus) Remove(addr uint8) *Meter {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, m := range b.meters {
		if m.Address() == addr {
			b.meters = append(b.meters[:i:i], b.meters[i+1:]...)
			return m
		}
	}
	return nil
}

// Meter returns the meter answering at addr, or nil. A master may move a
// meter onto another meter's address (register 0x0001); then the one added
// first answers, where a real line would carry both replies garbled.
func (b *Bus) Meter(addr uint8) *Meter {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.meterLocked(addr)
}

func (b *Bus) meterLocked(addr uint8) *Meter {
	for _, m := range b.meters {
		if m.Address() == addr {
			return m
		}
	}
	return nil
}

// Meters returns the meters on the bus in the order they were added.
func (b *Bus) Meters() []*Meter {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return append([]*Meter(nil), b.meters...)
}

// SetWireTiming makes replies take the time a real line would (see
// WireTiming); the zero value turns it off, which is the default.
func (b *Bus) SetWireTiming(w WireTiming) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.wire = w
}

func (b *Bus) wireTiming() WireTiming {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.wire
}

// response is a meter's answer to one request before it is framed.
type response struct {
	meter *Meter
	pdu   []byte // reply PDU: the answer or an exception
	fault fault
}

// dispatch hands a request PDU to the meter at addr. It reports false when
// nothing goes back: a broadcast (address 0, writes applied by every
// meter), an address no meter has (silence, as on RS-485), a NoReply
// fault, or a libmodbus slave that took the request for another slave's
// reply (serial is true on RTU lines, where WithLibmodbusSlave applies).
func (b *Bus) dispatch(addr uint8, pdu []byte, serial bool) (response, bool) {
	if len(pdu) == 0 {
		return response{}, false
	}
	var ignores map[*Meter]bool
	if serial {
		ignores = b.hearFrame(addr)
	}
	if addr == 0 {
		for _, m := range b.Meters() {
			if !ignores[m] {
				m.broadcast(pdu)
			}
		}
		return response{}, false
	}
	m := b.Meter(addr)
	if m == nil || ignores[m] {
		return response{}, false
	}
	r := m.respond(pdu)
	ok := r.pdu != nil && r.fault.kind != NoReply
	if ok && serial {
		// Whatever the reply looks like, every libmodbus slave waiting
		// for a reply takes it as the one it waits for.
		b.hearReply(m)
	}
	return r, ok
}

// hearFrame lets every libmodbus slave on the bus hear a request frame to
// addr, and returns those that ignore it: the ones that were waiting for
// another slave's reply. The others, if the frame is for another slave,
// wait for its reply from now on.
func (b *Bus) hearFrame(addr uint8) map[*Meter]bool {
	var ignores map[*Meter]bool
	for _, m := range b.Meters() {
		m.mu.Lock()
		switch {
		case !m.libmodbus:
		case m.awaiting:
			m.awaiting = false
			if ignores == nil {
				ignores = make(map[*Meter]bool)
			}
			ignores[m] = true
		case addr != 0 && addr != m.addr:
			m.awaiting = true
		}
		m.mu.Unlock()
	}
	return ignores
}

// hearReply lets every libmodbus slave but from hear from's reply.
func (b *Bus) hearReply(from *Meter) {
	for _, m := range b.Meters() {
		if m == from {
			continue
		}
		m.mu.Lock()
		m.awaiting = false
		m.mu.Unlock()
	}
}

// respond decides the request's fault and carries the request out (unless
// the fault is an Exception, which refuses it).
func (m *Meter) respond(pdu []byte) response {
	f := m.faults.next(false)
	if f.kind == Exception {
		return response{meter: m, pdu: exceptionPDU(pdu[0], f.code), fault: f}
	}
	m.mu.Lock()
	reply := m.executeLocked(pdu)
	m.mu.Unlock()
	return response{meter: m, pdu: reply, fault: f}
}

// broadcast carries out a write sent to address 0; reads are ignored, as
// no meter may answer a broadcast.
func (m *Meter) broadcast(pdu []byte) {
	m.faults.next(true)
	if !isWrite(pdu) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.executeLocked(pdu)
}
