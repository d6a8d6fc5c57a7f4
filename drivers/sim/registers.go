package sim

import (
	"slices"

	"mallgrid/drivers/meter"
)

// The parameter area every simulated meter answers on FC03, laid out as on
// the KPM33B (manual V3.4 section 6) because that is the meter the malls
// use. Registers the model maps itself take precedence over these.
const (
	regAddress    uint16 = 0x0001 // Modbus address 1..247 (writable)
	regBaud       uint16 = 0x0002 // bits 0–7 baud code 0..4, bits 8–15 format 0..2 (writable)
	regSerial     uint16 = 0x0012 // 7 registers, 13 ASCII bytes + 1 spare (read only)
	serialWords          = 7
	paramAreaTop         = int(regSerial) + serialWords // one past the last parameter
	maxBaudCode          = 4                            // 19200
	maxFormatCode        = 2                            // 8N1
	// defaultBaudWord is 9600 baud (code 3), 8E1 (format 0): the KPM33B default.
	defaultBaudWord uint16 = 0x0003
)

// modeSpan is where a model keeps its control-mode register(s): the block
// its meter.Relay.RemoteMode writes. n == 0 when the model has none and its
// relay follows every command.
type modeSpan struct {
	addr   uint16
	n      int
	remote []uint16 // the words that mean remote mode
}

func modeSpanOf(model *meter.Model) modeSpan {
	if model.Relay == nil || model.Relay.RemoteMode == nil || len(model.Relay.RemoteMode.Values) == 0 {
		return modeSpan{}
	}
	rm := model.Relay.RemoteMode
	n := min(len(rm.Values), 0x10000-int(rm.Address))
	return modeSpan{addr: rm.Address, n: n, remote: append([]uint16(nil), rm.Values[:n]...)}
}

func (s modeSpan) contains(a int) bool { return s.n > 0 && a >= int(s.addr) && a < int(s.addr)+s.n }

// words returns what the mode registers read: the remote words in remote
// mode; in local mode the KPM33B's local word (0xDD11) then zeros.
func (s modeSpan) words(remote bool) []uint16 {
	if remote {
		return s.remote
	}
	w := make([]uint16, s.n)
	w[0] = meter.KPM33BLocal
	return w
}

// readableTops returns, per read function code, one past the highest
// register a read may touch: the end of the model's published map, or of
// its own registers if they reach further. Reads beyond it get exception
// 02, as a meter answers for addresses it does not implement.
func readableTops(model *meter.Model, mode modeSpan) [5]int {
	top := publishedOf(model).top
	top[meter.ReadHolding] = max(top[meter.ReadHolding], paramAreaTop, int(mode.addr)+mode.n)
	for _, r := range model.Registers {
		end := int(r.Address) + int(r.Type.Words())
		top[r.Function] = max(top[r.Function], end)
	}
	return top
}

// mapped reports whether a model register of function fc covers address a;
// there the parameter area is hidden and cannot be written.
func (m *Meter) mapped(fc uint8, a int) bool {
	for _, r := range m.model.Registers {
		if r.Function == fc && a >= int(r.Address) && a < int(r.Address)+int(r.Type.Words()) {
			return true
		}
	}
	return false
}

// readLocked returns the bytes of qty registers from start for read
// function fc, or an exception code. Addresses inside the register space
// that hold nothing read as zero; a read that reaches past the highest
// register or touches an unreadable span is refused whole.
func (m *Meter) readLocked(fc uint8, start, qty uint16) ([]byte, byte) {
	end := int(start) + int(qty) // exclusive
	if end > m.top[fc] {
		return nil, ExceptionIllegalDataAddress
	}
	for _, u := range m.model.Unreadable {
		if int(start) <= int(u.To) && int(u.From) < end {
			return nil, ExceptionIllegalDataAddress
		}
	}
	buf := make([]byte, 2*int(qty))
	if fc == meter.ReadHolding {
		for a := int(start); a < end; a++ {
			w := m.paramWordLocked(a)
			buf[2*(a-int(start))] = byte(w >> 8)
			buf[2*(a-int(start))+1] = byte(w)
		}
	}
	snap := m.snapshotLocked()
	m.fillExtras(buf, fc, int(start), end, snap)
	for _, r := range m.model.Registers {
		rEnd := int(r.Address) + int(r.Type.Words())
		if r.Function != fc || rEnd <= int(start) || int(r.Address) >= end {
			continue
		}
		v, ok := snap.Value(r.Quantity)
		if !ok {
			continue
		}
		// A read may cut a value in half, as real meters allow; copy the
		// words that fall inside the window.
		enc := meter.Encode(r, v)
		for a := max(int(r.Address), int(start)); a < min(rEnd, end); a++ {
			src := 2 * (a - int(r.Address))
			dst := 2 * (a - int(start))
			copy(buf[dst:dst+2], enc[src:src+2])
		}
	}
	return buf, 0
}

// paramWordLocked is the parameter area's word at a (zero where it holds
// nothing).
func (m *Meter) paramWordLocked(a int) uint16 {
	switch {
	case m.mode.contains(a):
		return m.mode.words(m.remote)[a-int(m.mode.addr)]
	case a == int(regAddress):
		return uint16(m.addr)
	case a == int(regBaud):
		return m.baud
	case a >= int(regSerial) && a < paramAreaTop:
		i := 2 * (a - int(regSerial))
		return uint16(m.serial[i])<<8 | uint16(m.serial[i+1])
	}
	return 0
}

// writable reports whether a master may write holding register a.
func (m *Meter) writable(a int) bool {
	if m.mapped(meter.ReadHolding, a) {
		return false
	}
	return m.mode.contains(a) || a == int(regAddress) || a == int(regBaud)
}

// writeLocked writes values from start, all or nothing: any register that is
// not writable refuses the whole write with 02, any value out of range with
// 03, so a master never leaves a meter half-configured.
func (m *Meter) writeLocked(start uint16, values []uint16) byte {
	if int(start)+len(values) > 0x10000 {
		return ExceptionIllegalDataAddress
	}
	addr, baud := m.addr, m.baud
	var mode []uint16
	for i, v := range values {
		a := int(start) + i
		switch {
		case !m.writable(a):
			return ExceptionIllegalDataAddress
		case m.mode.contains(a):
			if mode == nil {
				mode = append([]uint16(nil), m.mode.words(m.remote)...)
			}
			mode[a-int(m.mode.addr)] = v
		case a == int(regAddress):
			if v < 1 || v > 247 {
				return ExceptionIllegalDataValue
			}
			addr = uint8(v)
		case a == int(regBaud):
			if v&0xFF > maxBaudCode || v>>8 > maxFormatCode {
				return ExceptionIllegalDataValue
			}
			baud = v
		}
	}
	remote := m.remote
	if mode != nil {
		switch {
		case slices.Equal(mode, m.mode.remote):
			remote = true
		case slices.Equal(mode, m.mode.words(false)):
			remote = false
		default:
			return ExceptionIllegalDataValue
		}
	}
	m.addr, m.baud, m.remote = addr, baud, remote
	return 0
}
