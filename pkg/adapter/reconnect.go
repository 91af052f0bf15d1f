// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"context"
	"errors"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/logging"
)

// Attempt is how one connection attempt of a Reconnect loop ended.
type Attempt struct {
	// Err says why the connection ended or could not be made.
	Err error
	// Healthy: the connection worked (the adapter reported Connected): the
	// backoff starts over.
	Healthy bool
	// Immediate: reconnect without waiting; only with Healthy.
	Immediate bool
	// Delay, if > 0, replaces the backoff: a wait the platform asked for.
	Delay time.Duration
	// Fatal: no retry can fix Err (credentials rejected, app disabled).
	// An Err wrapping ErrUnauthorized is fatal as well.
	Fatal bool
}

// Reconnect is the reconnect loop of a connection-holding adapter.
type Reconnect struct {
	// Life receives the status reports.
	Life *Life
	Log  *logrus.Entry
	// Metrics counts every reconnection.
	Metrics Metrics
	Backoff Backoff
}

// Run calls connect until ctx ends or an attempt is fatal. connect makes
// one connection, reports PhaseConnected (Life.Report) once it is live,
// serves it until it ends and says how. Between attempts Run reports
// PhaseReconnecting with the time of the next attempt ("reconnecting in
// 8s" on the status board), logs it and counts it; a fatal attempt is
// logged as an adapter fatal event and reported as PhaseFatal ("rejected
// credentials" when Err wraps ErrUnauthorized), and Run returns.
func (r Reconnect) Run(ctx context.Context, connect func(ctx context.Context) Attempt) {
	bo := r.Backoff
	for {
		at := connect(ctx)
		if ctx.Err() != nil {
			return
		}
		if at.Fatal || errors.Is(at.Err, ErrUnauthorized) {
			msg := "not reconnecting: no retry can fix this; fix the configuration, then reload herald"
			if errors.Is(at.Err, ErrUnauthorized) {
				msg = "credentials rejected; not reconnecting: fix them, then reload herald"
			}
			logging.Event(r.Log, logging.MsgAdapterFatal).WithError(at.Err).Error(r.Life.typ + ": " + msg)
			r.Life.Report(Status{Phase: PhaseFatal, Err: at.Err})
			return
		}
		if at.Healthy {
			bo.Reset()
		}
		var delay time.Duration
		switch {
		case at.Delay > 0:
			delay = at.Delay
		case at.Immediate && at.Healthy:
		default:
			delay = bo.Next()
		}
		r.Log.WithError(at.Err).WithField("retry_in", delay.Round(time.Millisecond).String()).Warn(r.Life.typ + ": connection lost; reconnecting")
		r.Life.Report(Status{Phase: PhaseReconnecting, RetryAt: time.Now().Add(delay), Err: at.Err})
		r.Metrics.Reconnect()
		if !Sleep(ctx, delay) {
			return
		}
	}
}
