package counter

import "errors"

// ErrNoQuarantine is returned by Release when the meter holds no jump.
var ErrNoQuarantine = errors.New("counter: no quarantined jump to release")

// ErrNoBaseline is returned by Exchange for a meter with no accepted
// reading: the old meter's energy has nothing to be measured from.
var ErrNoBaseline = errors.New("counter: meter has no accepted reading")

// ErrExchange is returned by Exchange for a record that contradicts the
// readings: a negative reading, an old meter's final reading below its last
// accepted one, a new meter's start above its first reading, or an
// exchange time that fits none of them.
var ErrExchange = errors.New("counter: exchange record does not fit the readings")

// ErrRepeated is returned by Exchange for the record last applied to the
// meter, sent again: it was applied once and bills nothing more.
var ErrRepeated = errors.New("counter: exchange record already applied")

// ErrRelease is returned by Release for a held jump that is back at the
// level of a meter an exchange record said was taken out.
var ErrRelease = errors.New("counter: held jump continues the exchanged meter's counter")
