package compere

import "errors"

var (
	// ErrPayload is returned by Parse for a payload that is not one JSON
	// object.
	ErrPayload = errors.New("compere: payload is not a JSON object")
	// ErrID is returned for a meter id that is missing or not 13
	// characters; commands refuse such ids too.
	ErrID = errors.New("compere: bad meter id")
	// ErrClock is kept in Header.ClockErr when the meter's clock is
	// missing, unreadable, or cannot be right (before 2010).
	ErrClock = errors.New("compere: meter clock")
	// ErrTopic is returned by Decode for a topic it has no message type
	// for.
	ErrTopic = errors.New("compere: unknown topic")
	// ErrValue is returned for a tag whose value the message cannot do
	// without (a TELEIND value, a reply's oprid) being malformed.
	ErrValue = errors.New("compere: bad value")
	// ErrCommand is returned by the command builders for an argument the
	// meter would ignore or refuse: an output the model lacks, an oprid
	// not of 32 letters and digits, an upload interval it cannot take.
	ErrCommand = errors.New("compere: bad command")
)
