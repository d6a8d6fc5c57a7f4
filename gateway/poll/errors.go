package poll

import "errors"

// ErrStopped answers relay commands still queued when the bus stops.
var ErrStopped = errors.New("poll: bus stopped")
