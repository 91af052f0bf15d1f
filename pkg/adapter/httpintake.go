// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heraldgw/herald/pkg/message"
	"github.com/sirupsen/logrus"
)

// Helpers for adapters that receive on herald's HTTP listener (the
// webhook, WhatsApp).

// preallocMax is the largest body buffer ReadBody allocates before the
// bytes arrive.
const preallocMax = 64 << 10

// Rejection reasons (Metrics.Rejected) of a body ReadBody refuses.
const (
	RejectTooLarge  = "too_large"  // 413: over the limit
	RejectReadError = "read_error" // 408 (read deadline) or 400 (body cut short)
)

// BodyError is a request body ReadBody refused: the status to answer and
// the rejection reason to count.
type BodyError struct {
	Status int
	Reason string
	Err    error
}

func (e *BodyError) Error() string { return e.Err.Error() }
func (e *BodyError) Unwrap() error { return e.Err }

// ReadBody reads the whole request body within limit bytes, by start +
// timeout (it sets the connection's read deadline; the listener's own
// timeouts only ever make it shorter, and test recorders lack one). On
// failure the error is a *BodyError: 413 (over the limit), 408 (the
// deadline passed) or 400 (body cut short).
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64, start time.Time, timeout time.Duration) ([]byte, error) {
	_ = http.NewResponseController(w).SetReadDeadline(start.Add(timeout))
	body, status, err := readBody(w, r, limit, timeout)
	if err != nil {
		reason := RejectReadError
		if status == http.StatusRequestEntityTooLarge {
			reason = RejectTooLarge
		}
		return nil, &BodyError{Status: status, Reason: reason, Err: err}
	}
	return body, nil
}

func readBody(w http.ResponseWriter, r *http.Request, limit int64, timeout time.Duration) ([]byte, int, error) {
	if r.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body is %d bytes, limit %d", r.ContentLength, limit)
	}
	rd := http.MaxBytesReader(w, r.Body, limit)
	var body []byte
	var err error
	// Allocate a declared length up front only when it is small: a client
	// announcing the limit and sending nothing must not pin that much
	// memory per connection; larger bodies grow as the bytes arrive.
	if r.ContentLength > 0 && r.ContentLength <= preallocMax {
		body = make([]byte, r.ContentLength)
		_, err = io.ReadFull(rd, body)
	} else {
		body, err = io.ReadAll(rd)
	}
	if err == nil {
		return body, 0, nil
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("body exceeds %d bytes", limit)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, http.StatusRequestTimeout, fmt.Errorf("body not received within %s", timeout)
	default:
		return nil, http.StatusBadRequest, errors.New("body cut short")
	}
}

// LogLimiter lets one log line per second through, so that a flood of bad
// requests (which anyone can send) cannot flood the journal; the metrics
// still count every one. The zero value is ready to use.
type LogLimiter struct {
	mu         sync.Mutex
	next       time.Time
	suppressed int
}

// Allow reports whether to log now and how many lines were suppressed
// since the last one logged.
func (l *LogLimiter) Allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.next) {
		l.suppressed++
		return false, 0
	}
	l.next = now.Add(time.Second)
	n := l.suppressed
	l.suppressed = 0
	return true, n
}

var cleanPathBad = regexp.MustCompile(`//|/\.\.?(/|$)|[{}?#% \t\r\n\x00]`)

// ValidPath accepts a clean absolute path usable as a callback URL in a
// net/http.ServeMux pattern: no wildcards, no trailing slash.
func ValidPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/") || p == "/":
		return errors.New("must start with / and name a path")
	case strings.HasSuffix(p, "/"):
		return errors.New("must not end with /")
	case cleanPathBad.MatchString(p):
		return errors.New("must be a clean path without {, }, ?, #, % or white space")
	}
	return nil
}

// Refuser answers the requests a callback URL refuses: it counts each by
// reason and logs at most one line a second (anyone can send them). The
// request body and secrets are never logged. Set Log and Metrics before
// use.
type Refuser struct {
	Log     *logrus.Entry
	Metrics Metrics
	// Prefix starts every log message ("wecom").
	Prefix string
	limit  LogLimiter
}

// Refuse answers status with msg as plain text, counts reason and logs
// msg at level.
func (f *Refuser) Refuse(w http.ResponseWriter, r *http.Request, now time.Time, status int, reason, msg string, level logrus.Level) {
	f.Metrics.Rejected(reason)
	if f.Log.Logger.IsLevelEnabled(level) {
		if ok, suppressed := f.limit.Allow(now); ok {
			e := f.Log.WithFields(logrus.Fields{"remote": r.RemoteAddr, "status": status, "reason": reason})
			if suppressed > 0 {
				e = e.WithField("suppressed", suppressed)
			}
			e.Log(level, f.Prefix+": request rejected: "+msg)
		}
	}
	http.Error(w, msg, status)
}

// Store hands m to inbox for a callback handler and says whether the
// callback may be acknowledged: m was stored, or the store refused it for
// good (message.ErrInvalid: counted as reason and logged, since
// acknowledging is the only way to stop the platform's retries). When it
// returns false Store has answered w and the platform retries: 503 with
// Retry-After: 1 while herald is stopping, 500 when the store failed.
func (f *Refuser) Store(ctx context.Context, w http.ResponseWriter, inbox Inbox, m *message.Inbound, reason string) bool {
	err := inbox.Deliver(ctx, m)
	switch {
	case err == nil:
		return true
	case errors.Is(err, message.ErrInvalid):
		f.Metrics.Rejected(reason)
		f.Log.WithError(err).WithField("event_id", m.EventID).Warn(f.Prefix + ": message refused by the store; acknowledged and dropped")
		return true
	case errors.Is(err, ErrStopping):
		w.Header().Set("Retry-After", "1")
		http.Error(w, "herald is stopping; retry", http.StatusServiceUnavailable)
	default:
		f.Log.WithError(err).WithField("event_id", m.EventID).Error(f.Prefix + ": cannot store message; the platform will retry")
		http.Error(w, "message not stored; retry", http.StatusInternalServerError)
	}
	return false
}

// Intake is whether a callback URL accepts events: open (with the inbox)
// between Start and Stop, closed before and after, when its handler
// answers 503 so that the platform retries, with the next instance if
// this one is stopping. The zero value is closed.
type Intake struct {
	live atomic.Pointer[Inbox]
}

// Open opens intake into inbox, right after Life.Start succeeded. It
// reports false, leaving intake closed, when a Stop ran meanwhile.
func (in *Intake) Open(life *Life, inbox Inbox) bool {
	in.live.Store(&inbox)
	if life.Stopping() {
		in.live.Store(nil)
		return false
	}
	return true
}

// Close closes intake (Stop's close function).
func (in *Intake) Close() { in.live.Store(nil) }

// Inbox returns the inbox while intake is open; while it is closed it
// answers 503 with Retry-After: 1 and returns nil.
func (in *Intake) Inbox(w http.ResponseWriter) Inbox {
	p := in.live.Load()
	if p == nil {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "not accepting messages (starting or stopping)", http.StatusServiceUnavailable)
		return nil
	}
	return *p
}

// CallbackRoutes are the GET (verification) and POST (events) routes of a
// callback URL served by h.
func CallbackRoutes(path string, h http.Handler) []Route {
	return []Route{
		{Pattern: http.MethodGet + " " + path, Handler: h},
		{Pattern: http.MethodPost + " " + path, Handler: h},
	}
}
