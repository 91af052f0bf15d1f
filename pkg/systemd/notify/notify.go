// SPDX-License-Identifier: Apache-2.0

package notify

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/sirupsen/logrus"
)

// MaxStatusLen bounds STATUS= values in bytes. PID 1 drops a whole
// notification datagram larger than its buffer (PIPE_BUF, 4096 bytes), so a
// long status must never take READY=1 or STOPPING=1 down with it.
const MaxStatusLen = 1024

// maxErrorKinds bounds the memory spent remembering which errors were logged.
const maxErrorKinds = 32

// Notifier sends sd_notify messages to $NOTIFY_SOCKET. It is safe for
// concurrent use; a nil *Notifier is valid and sends nothing. Methods return
// the send error for callers that care (tests, start-up), but every error is
// also logged (once per kind), so ignoring it is fine.
type Notifier struct {
	log *logrus.Entry

	mu         sync.Mutex
	status     string // last STATUS= value PID 1 accepted from us
	haveStatus bool
	errnoSet   bool // a non-zero ERRNO= is standing
	logged     map[string]bool
}

// New returns a Notifier that logs send failures to log (nil: discarded).
// It reads NOTIFY_SOCKET at every send and never modifies the environment.
func New(log *logrus.Entry) *Notifier {
	if log == nil {
		l := logrus.New()
		l.Out = io.Discard
		log = logrus.NewEntry(l)
	}
	return &Notifier{log: log, logged: make(map[string]bool)}
}

// Enabled reports whether a notification socket is configured, i.e. whether
// sends reach a service manager at all.
func (n *Notifier) Enabled() bool {
	return os.Getenv("NOTIFY_SOCKET") != ""
}

// Ready sends READY=1 with STATUS=status in one datagram: start-up (or a
// reload) is complete. An empty status leaves the current one unchanged. If
// an ERRNO= from a failed reload is standing, ERRNO=0 clears it.
func (n *Notifier) Ready(status string) error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	lines := []string{daemon.SdNotifyReady}
	if status != "" {
		lines = append(lines, "STATUS="+Sanitize(status))
	}
	if n.errnoSet {
		lines = append(lines, "ERRNO=0")
	}
	return n.sendLocked("ready", lines)
}

// Reloading sends RELOADING=1 with MONOTONIC_USEC= (CLOCK_MONOTONIC in µs) in
// one datagram. systemd 253+ (Type=notify-reload) accepts RELOADING=1 only
// with a timestamp no older than its reload request; 252 ignores it. A
// Reloading must always be followed by Ready or ReloadFailed, even when the
// reload failed, or `systemctl reload` hangs until TimeoutStartSec.
func (n *Notifier) Reloading() error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	lines := []string{daemon.SdNotifyReloading}
	// SdNotifyMonotonicUsec ends in "\n" (and is "" without a monotonic clock).
	if mono := strings.TrimSuffix(daemon.SdNotifyMonotonicUsec(), "\n"); mono != "" {
		lines = append(lines, mono)
	}
	return n.sendLocked("reloading", lines)
}

// ReloadFailed ends a reload that failed: READY=1, STATUS=status and
// ERRNO=errno in one datagram. The service keeps running with its previous
// configuration; systemd shows the status and the errno (StatusErrno).
func (n *Notifier) ReloadFailed(status string, errno int) error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sendLocked("reload-failed", []string{
		daemon.SdNotifyReady,
		"STATUS=" + Sanitize(status),
		"ERRNO=" + strconv.Itoa(errno),
	})
}

// Stopping sends STOPPING=1 with STATUS=status (omitted if empty) in one
// datagram. Send it first on shutdown: outside `systemctl stop` it moves the
// unit to stop-sigterm and starts the TimeoutStopSec clock from now.
func (n *Notifier) Stopping(status string) error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	lines := []string{daemon.SdNotifyStopping}
	if status != "" {
		lines = append(lines, "STATUS="+Sanitize(status))
	}
	return n.sendLocked("stopping", lines)
}

// Status sends STATUS=s (sanitised to one UTF-8 line of at most MaxStatusLen
// bytes). A status equal to the last one sent is not sent again, so callers
// may report on every tick. An empty s clears the status.
func (n *Notifier) Status(s string) error {
	if n == nil {
		return nil
	}
	s = Sanitize(s)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.haveStatus && n.status == s {
		return nil
	}
	return n.sendLocked("status", []string{"STATUS=" + s})
}

// Errno sends STATUS=status and ERRNO=errno in one datagram (StatusText and
// StatusErrno of the unit). Use ReloadFailed to end a failed reload.
func (n *Notifier) Errno(errno int, status string) error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sendLocked("errno", []string{
		"STATUS=" + Sanitize(status),
		"ERRNO=" + strconv.Itoa(errno),
	})
}

// Watchdog sends WATCHDOG=1. Only package watchdog should call it: pings
// must be gated on health.
func (n *Notifier) Watchdog() error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sendLocked("watchdog", []string{daemon.SdNotifyWatchdog})
}

// ExtendTimeout sends EXTEND_TIMEOUT_USEC=<d in µs, rounded up>. It moves the
// current state's deadline to at least now+d and never shortens it; it must
// be repeated within d (use a cadence of d/2 or less). d <= 0 sends nothing
// (systemd ignores 0).
func (n *Notifier) ExtendTimeout(d time.Duration) error {
	if n == nil || d <= 0 {
		return nil
	}
	usec := (d + time.Microsecond - 1) / time.Microsecond
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sendLocked("extend-timeout", []string{"EXTEND_TIMEOUT_USEC=" + strconv.FormatInt(int64(usec), 10)})
}

// Send sends lines (KEY=VALUE each) as one datagram, for keys without a
// method. Private keys should start with X_. STATUS= lines are tracked for
// Status' repeat suppression but not sanitised.
func (n *Notifier) Send(lines ...string) error {
	if n == nil || len(lines) == 0 {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sendLocked("send", lines)
}

// sendLocked sends one datagram and records the state PID 1 now has.
func (n *Notifier) sendLocked(verb string, lines []string) error {
	sent, err := daemon.SdNotify(false, strings.Join(lines, "\n"))
	if err != nil {
		n.logOnce(verb, err)
		return fmt.Errorf("notify: %s: %w", verb, err)
	}
	if !sent {
		return nil
	}
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "STATUS="):
			n.status, n.haveStatus = strings.TrimPrefix(l, "STATUS="), true
		case strings.HasPrefix(l, "ERRNO="):
			n.errnoSet = l != "ERRNO=0"
		}
	}
	return nil
}

// logOnce logs err at warning level the first time an error of its kind
// occurs and at debug level afterwards.
func (n *Notifier) logOnce(verb string, err error) {
	kind := errorKind(err)
	entry := n.log.WithError(err).WithFields(logrus.Fields{
		"notify_socket": os.Getenv("NOTIFY_SOCKET"),
		"verb":          verb,
	})
	if n.logged[kind] {
		entry.Debug("sd_notify failed again")
		return
	}
	if len(n.logged) < maxErrorKinds {
		n.logged[kind] = true
	}
	entry.Warn("sd_notify failed; systemd may not see herald's state (further errors of this kind are logged at debug level)")
}

// errorKind names the class of a send error: the failing operation and
// errno, without addresses that could make every instance unique.
func errorKind(err error) string {
	var op *net.OpError
	var errno syscall.Errno
	switch {
	case errors.As(err, &op) && errors.As(err, &errno):
		return op.Op + ": " + errno.Error()
	case errors.As(err, &errno):
		return errno.Error()
	default:
		return err.Error()
	}
}

// Sanitize turns s into a valid STATUS= value: valid UTF-8 (invalid bytes
// become U+FFFD), one line (control characters, newlines included, become
// spaces; runs of white space collapse), at most MaxStatusLen bytes (cut at
// a rune boundary, marked with "…").
func Sanitize(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= MaxStatusLen {
		return s
	}
	const ellipsis = "…"
	cut := MaxStatusLen - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
