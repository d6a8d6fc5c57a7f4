package meter

import (
	"context"
	"fmt"
)

// RegisterReader performs the read transactions of a plan. The Modbus
// transports of drivers/modbus satisfy it.
type RegisterReader interface {
	ReadHoldingRegisters(ctx context.Context, address, quantity uint16) ([]byte, error)
	ReadInputRegisters(ctx context.Context, address, quantity uint16) ([]byte, error)
}

// CoilSwitcher reads and switches a relay coil and writes registers.
type CoilSwitcher interface {
	ReadCoils(ctx context.Context, address, quantity uint16) ([]byte, error)
	WriteSingleCoil(ctx context.Context, address uint16, on bool) error
	WriteMultipleRegisters(ctx context.Context, address uint16, values []uint16) error
}

// Read runs plan over rr and decodes every register into a Reading. Any
// failed transaction fails the whole read: a Reading is never assembled from
// part of a meter, so a counter is never paired with stale neighbours.
func Read(ctx context.Context, rr RegisterReader, plan Plan) (Reading, error) {
	var rd Reading
	for _, b := range plan {
		data, err := readBlock(ctx, rr, b)
		if err != nil {
			return Reading{}, err
		}
		if err := decodeBlock(&rd, b, data); err != nil {
			return Reading{}, err
		}
	}
	return rd, nil
}

func readBlock(ctx context.Context, rr RegisterReader, b Block) ([]byte, error) {
	var (
		data []byte
		err  error
	)
	switch b.Function {
	case ReadInput:
		data, err = rr.ReadInputRegisters(ctx, b.Address, b.Count)
	default:
		data, err = rr.ReadHoldingRegisters(ctx, b.Address, b.Count)
	}
	if err != nil {
		return nil, fmt.Errorf("read FC%02d 0x%04X+%d: %w", b.Function, b.Address, b.Count, err)
	}
	if len(data) != 2*int(b.Count) {
		return nil, fmt.Errorf("read FC%02d 0x%04X+%d: %w: %d bytes, want %d",
			b.Function, b.Address, b.Count, ErrShortData, len(data), 2*int(b.Count))
	}
	return data, nil
}

// DecodeBlock decodes the registers of b from data, the bytes a read of b
// returned, into rd. It is exported for tests and golden frames.
func DecodeBlock(rd *Reading, b Block, data []byte) error { return decodeBlock(rd, b, data) }

func decodeBlock(rd *Reading, b Block, data []byte) error {
	for _, r := range b.Registers {
		off := 2 * int(r.Address-b.Address)
		end := off + 2*int(r.Type.Words())
		if end > len(data) {
			return fmt.Errorf("%s: %w", r.Quantity, ErrShortData)
		}
		v, err := Decode(r, data[off:end])
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadValue, err)
		}
		rd.Set(r.Quantity, v)
	}
	return nil
}

// ReadRelay reads the relay of a meter of model m. Open means every phase is
// open. The KPM33B manual reads one coil but shows three status bits (0x07),
// so any set bit among the first three counts as closed: the tenant still has
// power on some phase, which is what enforcement must know.
func ReadRelay(ctx context.Context, cs CoilSwitcher, m *Model) (RelayState, error) {
	if m.Relay == nil {
		return RelayUnknown, ErrNoRelay
	}
	data, err := cs.ReadCoils(ctx, m.Relay.Coil, 1)
	if err != nil {
		return RelayUnknown, fmt.Errorf("read relay coil 0x%04X: %w", m.Relay.Coil, err)
	}
	if len(data) < 1 {
		return RelayUnknown, fmt.Errorf("read relay coil 0x%04X: %w", m.Relay.Coil, ErrShortData)
	}
	if data[0]&0x07 != 0 {
		return RelayClosed, nil
	}
	return RelayOpen, nil
}

// SwitchRelay puts the meter in remote-control mode if its model needs it,
// switches the relay (closed = power on) and reads the state back. It returns
// the state read back; ErrRelayDidNotFollow when that differs from the command.
func SwitchRelay(ctx context.Context, cs CoilSwitcher, m *Model, closed bool) (RelayState, error) {
	if m.Relay == nil {
		return RelayUnknown, ErrNoRelay
	}
	if rm := m.Relay.RemoteMode; rm != nil {
		if err := cs.WriteMultipleRegisters(ctx, rm.Address, rm.Values); err != nil {
			return RelayUnknown, fmt.Errorf("set remote-control mode: %w", err)
		}
	}
	if err := cs.WriteSingleCoil(ctx, m.Relay.Coil, closed); err != nil {
		return RelayUnknown, fmt.Errorf("write relay coil 0x%04X: %w", m.Relay.Coil, err)
	}
	got, err := ReadRelay(ctx, cs, m)
	if err != nil {
		return RelayUnknown, fmt.Errorf("read back: %w", err)
	}
	want := RelayOpen
	if closed {
		want = RelayClosed
	}
	if got != want {
		return got, fmt.Errorf("%w: commanded %s, reads %s", ErrRelayDidNotFollow, want, got)
	}
	return got, nil
}
