// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/logging"
)

// CredentialCheck is the start of an adapter that holds no connection (the
// platform calls herald's HTTP listener) but can check its credentials: the
// check is retried with Backoff like a connection (PhaseReconnecting on the
// status board), PhaseConnected once it passes, and a rejection is fatal,
// reported once whether the check or a later send found it.
type CredentialCheck struct {
	Life    *Life
	Log     *logrus.Entry
	Metrics Metrics
	Backoff Backoff

	fatal atomic.Bool // the fatal event was logged
}

// CheckBackoff is the usual backoff between credential checks: one second,
// doubling up to five minutes (a platform down for long is checked rarely;
// sends do not wait for the check).
func CheckBackoff() Backoff { return Backoff{Min: time.Second, Max: 5 * time.Minute} }

// Run calls check until it succeeds, then reports PhaseConnected and waits
// for ctx to end. An error wrapping ErrUnauthorized ends Run as fatal (the
// Reconnect loop logs the fatal event); RetryAfter of an error sets the
// wait before the next check.
func (c *CredentialCheck) Run(ctx context.Context, check func(ctx context.Context) error) {
	Reconnect{Life: c.Life, Log: c.Log, Metrics: c.Metrics, Backoff: c.Backoff}.
		Run(ctx, func(ctx context.Context) Attempt {
			if err := check(ctx); err != nil {
				if errors.Is(err, ErrUnauthorized) {
					c.fatal.Store(true)
				}
				d, _ := RetryAfter(err)
				return Attempt{Err: err, Delay: d}
			}
			c.Life.Report(Status{Phase: PhaseConnected})
			<-ctx.Done()
			return Attempt{Err: ctx.Err(), Healthy: true}
		})
}

// Rejected records that a send found the credentials rejected: the status
// board shows the platform as failed and the journal has the fatal event
// (msg, with err), once for the adapter's life.
func (c *CredentialCheck) Rejected(err error, msg string) {
	if !c.fatal.CompareAndSwap(false, true) {
		return
	}
	logging.Event(c.Log, logging.MsgAdapterFatal).WithError(err).Error(msg)
	c.Life.Report(Status{Phase: PhaseFatal, Err: err})
}
