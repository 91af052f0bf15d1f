// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"errors"

	"github.com/heraldgw/herald/pkg/adminapi"
)

// Exit codes of the herald command. They are listed in the README; the unit
// prevents restarts for ExitConfig and ExitStoreCorrupt
// (RestartPreventExitStatus=), since restarting cannot fix either.
const (
	// ExitOK: normal end, including every stop started by SIGTERM or SIGINT.
	ExitOK = 0
	// ExitFailure: an unexpected error; the message says what.
	ExitFailure = 1
	// ExitUsage: bad command line (EX_USAGE).
	ExitUsage = 64
	// ExitStoreCorrupt: the message store is corrupt (EX_DATAERR): SQLite
	// reports the file malformed or not a database, or a record cannot be
	// decoded. Nothing else: the unit never restarts herald after it.
	ExitStoreCorrupt = 65
	// ExitRunning: another herald runs: the unit is active (manual start
	// refused) or the state directory is locked by another process
	// (EX_UNAVAILABLE). Also `herald reload` when herald is not running.
	ExitRunning = 69
	// ExitListen: a listener could not be obtained (EX_OSERR).
	ExitListen = 71
	// ExitStoreIO: the message store cannot be opened, read or written
	// for any reason but corruption, or the media store or a key in the
	// state directory cannot be set up: I/O error, permissions, full disk
	// (EX_IOERR). The unit restarts herald after it.
	ExitStoreIO = 74
	// ExitConfig: the configuration is invalid, or a credential it names
	// cannot be read (EX_CONFIG).
	ExitConfig = 78
)

// ExitNotRunning is `herald status`'s exit code when herald is not running
// (as `systemctl status` uses 3 for an inactive unit).
const ExitNotRunning = 3

// ExitError is an error with the exit code main should use.
type ExitError struct {
	Code int
	Err  error
	// Logged says herald already logged the error (as a lifecycle event,
	// in the journal under systemd); main does not print it again.
	Logged bool
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

func exitErr(code int, err error) error { return &ExitError{Code: code, Err: err} }

func logged(code int, err error) error { return &ExitError{Code: code, Err: err, Logged: true} }

// AlreadyLogged reports whether err was logged by herald itself.
func AlreadyLogged(err error) bool {
	var ee *ExitError
	return errors.As(err, &ee) && ee.Logged
}

// ExitCode returns the exit code for an error returned by Run (0 for nil).
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	var nr *adminapi.NotRunningError
	if errors.As(err, &nr) {
		return ExitRunning
	}
	return ExitFailure
}
