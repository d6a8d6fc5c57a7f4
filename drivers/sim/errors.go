package sim

import "errors"

var (
	// ErrAddress is returned for a Modbus address outside 1..247, the range a
	// slave may hold (0 is broadcast, 248..255 are reserved).
	ErrAddress = errors.New("sim: address outside 1..247")
	// ErrAddressTaken is returned when a meter joins a bus that already has a
	// meter at its address: two slaves answering at once garble the line.
	ErrAddressTaken = errors.New("sim: address already on the bus")
	// ErrModel is returned when a meter is built from a nil or invalid model.
	ErrModel = errors.New("sim: unusable meter model")
	// ErrFault is returned for an unknown fault kind or an impossible rate.
	ErrFault = errors.New("sim: bad fault setting")
)
