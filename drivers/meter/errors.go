package meter

import "errors"

var (
	// ErrShortData is returned when a read returns fewer bytes than requested.
	ErrShortData = errors.New("meter: short data")
	// ErrBadValue is returned when a register holds a value that cannot be a
	// measurement (NaN, infinity); the whole reading is discarded.
	ErrBadValue = errors.New("meter: bad value")
	// ErrNoRelay is returned for relay operations on a model without a relay.
	ErrNoRelay = errors.New("meter: model has no relay")
	// ErrRelayDidNotFollow is returned when the relay state read back after a
	// command differs from the command (meter in local mode, stuck contact).
	ErrRelayDidNotFollow = errors.New("meter: relay did not follow the command")
	// ErrUnknownModel is returned by a Catalogue for a name it does not hold.
	ErrUnknownModel = errors.New("meter: unknown model")
	// ErrBadFunction is returned by Model.WithFunction for a function code
	// that does not read registers (anything but 3 and 4).
	ErrBadFunction = errors.New("meter: not a register read function code")
)
