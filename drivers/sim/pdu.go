package sim

import "encoding/binary"

// Modbus exception codes (Modbus Application Protocol V1.1b3, section 7).
const (
	ExceptionIllegalFunction    byte = 0x01 // function code not supported
	ExceptionIllegalDataAddress byte = 0x02 // address (range) not implemented
	ExceptionIllegalDataValue   byte = 0x03 // quantity or value not allowed
	ExceptionDeviceFailure      byte = 0x04 // slave device failure
)

// Function codes the simulator implements; every other function a frame can
// carry gets ExceptionIllegalFunction, as from a meter that lacks it.
const (
	fcReadCoils      byte = 0x01
	fcReadHolding    byte = 0x03
	fcReadInput      byte = 0x04
	fcWriteCoil      byte = 0x05
	fcWriteRegister  byte = 0x06
	fcWriteRegisters byte = 0x10
)

// Protocol limits on quantities (Modbus Application Protocol, section 6).
const (
	maxReadCoils      = 2000
	maxReadRegisters  = 125
	maxWriteRegisters = 123
	// relayCoils is how many coils FC01 may read at the relay coil: the
	// KPM33B shows up to three phase bits in one status byte.
	relayCoils = 8
)

// Coil values of FC05 (the only two the protocol allows).
const (
	coilOn  uint16 = 0xFF00
	coilOff uint16 = 0x0000
)

// exceptionPDU is the reply refusing a request of function fc with code.
func exceptionPDU(fc, code byte) []byte { return []byte{fc | 0x80, code} }

// executeLocked carries out one request PDU (function code first) and
// returns the reply PDU: the answer, or an exception. For a broadcast the
// writes are applied and the reply is thrown away by the caller.
// It never panics on what the line delivers: every length is checked
// before it is used.
func (m *Meter) executeLocked(pdu []byte) []byte {
	if len(pdu) == 0 {
		return nil
	}
	fc := pdu[0]
	var reply []byte
	var code byte
	switch fc {
	case fcReadCoils:
		reply, code = m.readCoilsLocked(pdu)
	case fcReadHolding, fcReadInput:
		reply, code = m.readRegistersLocked(pdu)
	case fcWriteCoil:
		reply, code = m.writeCoilLocked(pdu)
	case fcWriteRegister:
		reply, code = m.writeRegisterLocked(pdu)
	case fcWriteRegisters:
		reply, code = m.writeRegistersLocked(pdu)
	default:
		code = ExceptionIllegalFunction
	}
	if code != 0 {
		return exceptionPDU(fc, code)
	}
	return reply
}

// readCoilsLocked answers FC01 at the relay coil. The status byte carries
// one bit per phase (bit0 = A … bit2 = C, 1 = closed) whatever quantity was
// asked for, which is what the KPM33B manual shows (it reads 1 coil and gets
// 0x07); a gateway must accept that form.
func (m *Meter) readCoilsLocked(pdu []byte) ([]byte, byte) {
	if m.model.Relay == nil {
		return nil, ExceptionIllegalFunction
	}
	if len(pdu) != 5 {
		return nil, ExceptionIllegalDataValue
	}
	start, qty := be16(pdu[1:]), be16(pdu[3:])
	if qty < 1 || qty > maxReadCoils {
		return nil, ExceptionIllegalDataValue
	}
	if start != m.model.Relay.Coil || qty > relayCoils {
		return nil, ExceptionIllegalDataAddress
	}
	m.advanceLocked(m.now())
	var status byte
	if m.relayClosed {
		status = byte(1)<<m.phases - 1
	}
	return []byte{fcReadCoils, 1, status}, 0
}

func (m *Meter) readRegistersLocked(pdu []byte) ([]byte, byte) {
	if len(pdu) != 5 {
		return nil, ExceptionIllegalDataValue
	}
	fc := pdu[0]
	start, qty := be16(pdu[1:]), be16(pdu[3:])
	if qty < 1 || qty > maxReadRegisters {
		return nil, ExceptionIllegalDataValue
	}
	data, code := m.readLocked(uint8(fc), start, qty)
	if code != 0 {
		return nil, code
	}
	return append([]byte{fc, byte(len(data))}, data...), 0
}

// writeCoilLocked switches the relay. A model whose relay needs remote mode
// acknowledges the command in local mode but does not switch, exactly as
// the KPM33B does: only reading the relay back reveals it.
func (m *Meter) writeCoilLocked(pdu []byte) ([]byte, byte) {
	if m.model.Relay == nil {
		return nil, ExceptionIllegalFunction
	}
	if len(pdu) != 5 {
		return nil, ExceptionIllegalDataValue
	}
	coil, v := be16(pdu[1:]), be16(pdu[3:])
	if coil != m.model.Relay.Coil {
		return nil, ExceptionIllegalDataAddress
	}
	if v != coilOn && v != coilOff {
		return nil, ExceptionIllegalDataValue
	}
	if m.mode.n == 0 || m.remote {
		m.setRelayLocked(v == coilOn)
	}
	return append([]byte(nil), pdu...), 0
}

func (m *Meter) writeRegisterLocked(pdu []byte) ([]byte, byte) {
	if len(pdu) != 5 {
		return nil, ExceptionIllegalDataValue
	}
	if code := m.writeLocked(be16(pdu[1:]), []uint16{be16(pdu[3:])}); code != 0 {
		return nil, code
	}
	return append([]byte(nil), pdu...), 0
}

func (m *Meter) writeRegistersLocked(pdu []byte) ([]byte, byte) {
	if len(pdu) < 6 {
		return nil, ExceptionIllegalDataValue
	}
	start, qty, count := be16(pdu[1:]), be16(pdu[3:]), int(pdu[5])
	if qty < 1 || qty > maxWriteRegisters || count != 2*int(qty) || len(pdu) != 6+count {
		return nil, ExceptionIllegalDataValue
	}
	values := make([]uint16, qty)
	for i := range values {
		values[i] = be16(pdu[6+2*i:])
	}
	if code := m.writeLocked(start, values); code != 0 {
		return nil, code
	}
	return []byte{fcWriteRegisters, pdu[1], pdu[2], pdu[3], pdu[4]}, 0
}

// isWrite reports whether a request PDU changes the meter; only those are
// carried out for a broadcast.
func isWrite(pdu []byte) bool {
	if len(pdu) == 0 {
		return false
	}
	switch pdu[0] {
	case fcWriteCoil, fcWriteRegister, fcWriteRegisters:
		return true
	}
	return false
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
