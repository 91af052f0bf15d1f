// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"
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
