// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptrace"
	"sync/atomic"
	"time"
)

// Sentinel errors classify failures for the core's retry decisions. Adapters
// wrap them (fmt.Errorf("telegram: sendMessage: %w: %s", adapter.ErrPermanent,
// description)) so errors.Is works and the message stays specific.
var (
	// ErrTemporary: a transient failure (network error, 5xx); retry with
	// backoff.
	ErrTemporary = errors.New("temporary failure")
	// ErrRateLimited: the platform asked to slow down. Use RetryAfterError to
	// carry the platform's delay.
	ErrRateLimited = errors.New("rate limited")
	// ErrPermanent: the request can never succeed as it is (bad chat id,
	// message rejected); give up and count it.
	ErrPermanent = errors.New("permanent failure")
	// ErrUnauthorized: credentials were rejected; give up and alarm. Also
	// the cause of PhaseFatal for intake.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrStopping is returned by Inbox.Deliver once herald has stopped
	// intake: do not acknowledge, the platform will redeliver.
	ErrStopping = errors.New("herald is stopping")
	// ErrUnavailable is returned by Inbox.Deliver while the message store
	// cannot be reached (store.backend nats, NATS unreachable): do not
	// acknowledge, the platform will redeliver; herald retries by itself.
	ErrUnavailable = errors.New("message store unavailable")
	// ErrAmbiguous: the request may or may not have reached the platform (a
	// timeout after the request was written). Retried only when the message
	// carries an idempotency key the platform honours.
	ErrAmbiguous = errors.New("outcome unknown")
	// ErrNotResent: Recoverer.Recover declined to send again a message
	// that an earlier send may have shown (an at-most-once policy). Not
	// retried.
	ErrNotResent = errors.New("not sent again: an earlier send may have reached the user")
	// ErrTooLarge: a file over a size limit (the platform's upload or
	// download limit, or herald's media.max_bytes). Not retried.
	ErrTooLarge = errors.New("file too large")
)

// RetryAfterError is a rate-limit or temporary error with the delay the
// platform asked for (Retry-After, retry_after, x-ogw-ratelimit-reset).
type RetryAfterError struct {
	After time.Duration
	Err   error // ErrRateLimited or ErrTemporary, possibly wrapped
}

func (e *RetryAfterError) Error() string {
	return fmt.Sprintf("%v (retry after %v)", e.Err, e.After)
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// RetryAfter returns the delay carried by err, if any.
func RetryAfter(err error) (time.Duration, bool) {
	var ra *RetryAfterError
	if errors.As(err, &ra) {
		return ra.After, true
	}
	return 0, false
}

// Retryable reports whether a delivery that failed with err may be retried.
// Unclassified errors are treated as temporary: a network error from
// net/http is not wrapped by anyone.
func Retryable(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrPermanent), errors.Is(err, ErrUnauthorized), errors.Is(err, ErrNotResent), errors.Is(err, ErrTooLarge):
		return false
	default:
		return true
	}
}

// TrackWritten returns ctx traced so that written reports whether a request
// made with it was written in full: after that, a failure leaves the
// request's effect unknown (ErrAmbiguous for a send).
func TrackWritten(ctx context.Context) (traced context.Context, written func() bool) {
	var w atomic.Bool
	traced = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) { w.Store(i.Err == nil) },
	})
	return traced, w.Load
}
