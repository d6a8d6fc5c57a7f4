// Command mallgrid is the prepaid electricity gateway: the daemon, the
// simulated mall, and the technician's tools. Each subcommand parses its
// flags and calls into package gateway; exit codes are decided here only.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	_ "time/tzdata" // the gateway box may lack zoneinfo

	"mallgrid/store"
)

// version is set by the linker (make build).
var version = "dev"

// Exit statuses. Each failure a technician or a script must tell apart
// has its own; README.md lists them.
const (
	// exitFailure is any failure without a status of its own — and verify's
	// ledger violations, which DESIGN.md fixes at 1.
	exitFailure = 1
	// exitConfig: the configuration has problems (config check, and every
	// command given -c FILE), or an argument would have the command write
	// over the database's own files (backup's OUT).
	exitConfig = 2
	// exitDamaged: the database file is damaged or cannot be read as one
	// (store.ErrCorrupt).
	exitDamaged = 3
	// exitRefused: the database file is missing, empty, not the one this
	// gateway ran with (store.ErrMissing, ErrEmpty, ErrReplaced) or of a
	// newer schema (store.ErrSchemaTooNew), or there
	// is none where the directory holds another gateway's (ErrNotHere); the
	// operator restores it from a backup, corrects storage.path, or runs
	// `mallgrid db init`.
	exitRefused = 4
)

// exitError carries an exit status decided by a command (config problems,
// verify's violations).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, the default handling comes back: a second
	// Ctrl-C or SIGTERM ends a shutdown that hangs.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit status (see exitFailure
// and the others above; 0 is success).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "mallgrid:", err)
	code, hint := exitCode(err)
	if hint != "" {
		fmt.Fprintln(stderr, hint)
	}
	return code
}

// restoreHint is the two ways out of a database the gateway refuses.
const restoreHint = "(stop the service, `mallgrid restore -c FILE BACKUP` — a daily snapshot is in the snapshots directory —, start), or start a new, empty ledger " +
	"on purpose with `mallgrid db init -c FILE`"

// exitCode maps an error to its exit status by the store's sentinels, so
// that run, verify and db agree, and says what the operator can do.
func exitCode(err error) (code int, hint string) {
	switch {
	case errors.Is(err, store.ErrCorrupt):
		return exitDamaged, "The database file is damaged; the gateway will not use it. Restore it from a backup " +
			restoreHint + " (the damaged file is kept aside)."
	case errors.Is(err, store.ErrNotHere):
		return exitRefused, "The gateway will not start a new ledger beside another gateway's database: check storage.path " +
			"(and MALLGRID_STORAGE_PATH) in the configuration. If the path is right and a new, empty ledger is meant, " +
			"start it on purpose with `mallgrid db init -c FILE`."
	case errors.Is(err, store.ErrMissing), errors.Is(err, store.ErrEmpty), errors.Is(err, store.ErrReplaced):
		return exitRefused, "The gateway will not start a new ledger by itself: payments already credited could be " +
			"credited again. Either restore the database file from a backup " + restoreHint + "."
	case errors.Is(err, store.ErrSchemaTooNew):
		// A person must act (the newer package again, or the backup from
		// before the upgrade): restarting would only repeat it, and verify's
		// 1 would read as ledger violations.
		return exitRefused, ""
	case errors.Is(err, store.ErrExists):
		return exitFailure, "Give --force to keep that file aside (renamed, never deleted) and start a new ledger anyway."
	case errors.Is(err, store.ErrLocked):
		return exitFailure, "Another mallgrid (the service?) holds the database; stop it first (stop the gateway: systemctl stop mallgrid)."
	}
	return exitFailure, ""
}
