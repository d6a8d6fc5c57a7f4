package tariff

import "errors"

// ErrInterval is returned by Split when energy is to be apportioned over an
// interval that does not run forward (from not before to) or is too long to
// measure in nanoseconds (about 292 years).
var ErrInterval = errors.New("tariff: bad interval")

// ErrEnergy is returned by Split for a negative energy or month-to-date
// counter, or one so large that their sum overflows.
var ErrEnergy = errors.New("tariff: bad energy")
