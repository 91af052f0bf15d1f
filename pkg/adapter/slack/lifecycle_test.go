// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
	"github.com/heraldgw/herald/pkg/adapter/slack/slacktest"
	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

func (h *harness) waitEnded() {
	h.t.Helper()
	select {
	case <-h.a.Life.RunDone():
	case <-time.After(wait):
		h.t.Fatal("the adapter kept running")
	}
}

func TestOpenCredentialErrorsAreFatal(t *testing.T) {
	for _, code := range []string{"invalid_auth", "not_authed", "account_inactive", "token_revoked", "not_allowed_token_type"} {
		t.Run(code, func(t *testing.T) {
			h := newHarness(t, fastOptions(), nil)
			h.fake.Inject(slacktest.Open, fakeserver.Reject(http.StatusOK).WithCode(code).Times(1))
			h.start()
			st := h.st.WaitPhase(t, adapter.PhaseFatal, wait)
			if !errors.Is(st.Err, adapter.ErrUnauthorized) || !strings.Contains(st.Err.Error(), code) {
				t.Fatalf("fatal error %v, want ErrUnauthorized mentioning %s", st.Err, code)
			}
			adaptertest.RequireEvent(t, h.logs, logging.MsgAdapterFatal)
			h.waitEnded()
			if n := h.fake.Opens(); n != 1 {
				t.Fatalf("apps.connections.open called %d times, want 1 (no retry)", n)
			}
		})
	}
}

func TestBadAppTokenIsFatal(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	h.a.appToken = mustRead(t, tokenFile(t, "wrong", "xapp-1-wrong"))
	h.start()
	st := h.st.WaitPhase(t, adapter.PhaseFatal, wait)
	if !errors.Is(st.Err, adapter.ErrUnauthorized) || strings.Contains(st.Err.Error(), "xapp-1-wrong") {
		t.Fatalf("fatal error %v: want ErrUnauthorized without the token", st.Err)
	}
	h.waitEnded()
}

func TestOpenFailuresAreRetried(t *testing.T) {
	tests := []struct {
		name  string
		fault fakeserver.Fault
	}{
		{"internal_error", fakeserver.Reject(http.StatusOK).WithCode("internal_error")},
		{"unknown code", fakeserver.Reject(http.StatusOK).WithCode("something_new")},
		{"HTTP 500", fakeserver.Reject(500)},
		{"HTTP 503 with ok:false", fakeserver.Reject(503).WithCode("service_unavailable")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, fastOptions(), nil)
			h.fake.Inject(slacktest.Open, tt.fault.Times(2))
			h.start()
			st := h.st.WaitPhase(t, adapter.PhaseReconnecting, wait)
			if st.Err == nil || st.RetryAt.IsZero() {
				t.Fatalf("reconnecting status %+v lacks error or retry time", st)
			}
			h.st.WaitPhase(t, adapter.PhaseConnected, wait)
			if n := h.fake.Opens(); n != 3 {
				t.Fatalf("apps.connections.open called %d times, want 3", n)
			}
			if n := h.m.ReconnectCount(); n != 2 {
				t.Fatalf("reconnects counted %d, want 2", n)
			}
		})
	}
}

func TestOpenRateLimitHonoursRetryAfter(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	h.fake.Inject(slacktest.Open, fakeserver.RateLimit(1, time.Second))
	failed := time.Now()
	h.start()
	st := h.st.WaitPhase(t, adapter.PhaseReconnecting, wait)
	if !errors.Is(st.Err, adapter.ErrRateLimited) || st.RetryAt.Before(failed.Add(time.Second)) {
		t.Fatalf("status %+v: want rate limited with a retry at least 1s after %v", st, failed)
	}
	h.fake.WaitOpens(t, 2, wait)
	if now := time.Now(); now.Before(st.RetryAt) {
		t.Fatalf("retried at %v, before Retry-After allowed (%v)", now, st.RetryAt)
	}
	h.st.WaitPhase(t, adapter.PhaseConnected, wait)
}

// TestOpenHostileRetryAfter: a Retry-After of 30 days on
// apps.connections.open would stall intake for 720 h. It is clamped to
// adapter.MaxRetryAfter and the clamp is logged once, with the value given
// and the value used.
func TestOpenHostileRetryAfter(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	h.fake.Inject(slacktest.Open, fakeserver.RateLimit(1, 30*24*time.Hour))
	failed := time.Now()
	h.start()
	st := h.st.WaitPhase(t, adapter.PhaseReconnecting, wait)
	if d := st.RetryAt.Sub(failed); d < adapter.MaxRetryAfter-time.Minute || d > adapter.MaxRetryAfter+time.Minute {
		t.Errorf("retry scheduled %v after the 429, want %v", d, adapter.MaxRetryAfter)
	}
	clamps := adaptertest.Clamps(h.logs)
	if len(clamps) != 1 || clamps[0]["given"] != "2592000" || clamps[0]["used"] != adapter.MaxRetryAfter.String() {
		t.Errorf("clamp log entries %v, want one with given 2592000 and used %v", clamps, adapter.MaxRetryAfter)
	}
}

func TestBackoff(t *testing.T) {
	a := &Adapter{backoff: adapter.Backoff{Min: time.Second, Max: 5 * time.Minute}}
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 9: 256 * time.Second, 10: 5 * time.Minute, 60: 5 * time.Minute} {
		for range 20 {
			if d := a.delay(n, nil); d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", n, d, want/2, want)
			}
		}
	}
	ra := &adapter.RetryAfterError{After: 30 * time.Second, Err: adapter.ErrRateLimited}
	if d := a.delay(1, ra); d != 30*time.Second {
		t.Fatalf("backoff with Retry-After 30s = %v", d)
	}
	if d := a.delay(20, ra); d < 150*time.Second {
		t.Fatalf("backoff(20) with a short Retry-After = %v, want the longer backoff", d)
	}
}

func TestLinkDisabledIsFatal(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	h.connected()
	h.fake.Disconnect("link_disabled")
	st := h.st.WaitPhase(t, adapter.PhaseFatal, wait)
	if !errors.Is(st.Err, adapter.ErrUnauthorized) || !strings.Contains(st.Err.Error(), "link_disabled") {
		t.Fatalf("fatal error %v", st.Err)
	}
	h.waitEnded()
	if n := h.fake.Opens(); n != 1 {
		t.Fatalf("apps.connections.open called %d times after link_disabled, want 1", n)
	}
}

// refresh_requested: the next connection is opened while the current one
// is still read; an event pushed on the old connection during the switch is
// stored and acknowledged there; herald then closes the old one itself
// with 1000, long before Slack would have.
func TestRefreshLosesNoEvent(t *testing.T) {
	for _, reason := range []string{"refresh_requested", "warning"} {
		t.Run(reason, func(t *testing.T) {
			opts := fastOptions()
			opts.DisconnectGrace = time.Minute // any close of the old connection is herald's
			opts.RedeliverAfter = time.Minute  // no redelivery may paper over a loss
			h := newHarness(t, opts, nil)
			old := h.connected()
			h.fake.HoldHello(true)
			h.fake.Disconnect(reason)
			h.fake.WaitConns(t, 2, wait)
			during := h.fake.PushEventTo(old, dm("during the switch"))
			if a := h.fake.WaitAck(t, during.EventID, wait); a.Conn != old {
				t.Fatalf("ack %+v, want it on the old connection %d", a, old)
			}
			h.fake.ReleaseHello()
			if code := h.fake.WaitClosed(t, old, wait); code != websocket.StatusNormalClosure {
				t.Fatalf("old connection closed with %v, want 1000 from herald", code)
			}
			cur := h.fake.Live()
			if len(cur) != 1 || cur[0] == old {
				t.Fatalf("live connections %v after the switch", cur)
			}
			after := h.fake.PushEvent(dm("after the switch"))
			if a := h.fake.WaitAck(t, after.EventID, wait); a.Conn != cur[0] {
				t.Fatalf("ack %+v, want it on the new connection %d", a, cur[0])
			}
			msgs := h.inbox.WaitN(t, 2, wait)
			if msgs[0].Text != "during the switch" || msgs[1].Text != "after the switch" {
				t.Fatalf("stored %q, %q", msgs[0].Text, msgs[1].Text)
			}
			for _, st := range h.st.All() {
				if st.Phase == adapter.PhaseReconnecting {
					t.Fatalf("reported %+v during a seamless refresh", st)
				}
			}
			if n := h.m.ReconnectCount(); n != 1 {
				t.Fatalf("reconnects counted %d, want 1", n)
			}
		})
	}
}

// A refresh whose new connection fails keeps the current one and retries.
func TestRefreshFailureKeepsCurrent(t *testing.T) {
	opts := fastOptions()
	opts.DisconnectGrace = time.Minute
	h := newHarness(t, opts, nil)
	old := h.connected()
	h.fake.Inject(slacktest.Open, fakeserver.Reject(http.StatusOK).WithCode("internal_error").Times(2))
	h.fake.Disconnect("refresh_requested")
	h.fake.WaitHellos(t, 2, wait)
	if code := h.fake.WaitClosed(t, old, wait); code != websocket.StatusNormalClosure {
		t.Fatalf("old connection closed with %v", code)
	}
	if n := h.fake.Opens(); n != 4 {
		t.Fatalf("apps.connections.open called %d times, want 4", n)
	}
	for _, st := range h.st.All() {
		if st.Phase == adapter.PhaseReconnecting {
			t.Fatalf("reported %+v while the current connection was fine", st)
		}
	}
}

func TestReconnectAfterAbruptClose(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	first := h.connected()
	h.fake.Drop()
	st := h.st.WaitPhase(t, adapter.PhaseReconnecting, wait)
	if st.Err == nil {
		t.Fatalf("reconnecting without a cause: %+v", st)
	}
	second := h.fake.WaitHellos(t, 2, wait)
	if second == first {
		t.Fatal("no new connection")
	}
	waitPhaseAfter(t, h.st, adapter.PhaseConnected, adapter.PhaseReconnecting)
	p := h.fake.PushEvent(dm("back"))
	if a := h.fake.WaitAck(t, p.EventID, wait); a.Conn != second {
		t.Fatalf("ack %+v, want connection %d", a, second)
	}
	if h.m.ReconnectCount() < 1 {
		t.Fatal("reconnect not counted")
	}
}

// waitPhaseAfter waits for phase p reported after the last report of
// phase after.
func waitPhaseAfter(t *testing.T, st *adaptertest.Statuses, p, after adapter.Phase) {
	t.Helper()
	var all []adapter.Status
	if !testwait.Until(testwait.Timeout, func() bool {
		all = st.All()
		seenAfter := false
		for _, s := range all {
			if s.Phase == after {
				seenAfter = true
			} else if s.Phase == p && seenAfter {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("no %s report after %s: %+v", p, after, all)
	}
}

func TestPingsKeepAHealthyLinkAndAnswerSlack(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	id := h.connected()
	testwait.For(t, "3 pings from herald and 2 Slack pings answered", func() bool {
		fromClient, answered := h.fake.Pings(id)
		return fromClient >= 3 && answered >= 2
	})
	if n := h.fake.Opens(); n != 1 {
		t.Fatalf("reconnected %d times on a healthy link", n-1)
	}
}

// A zombie link (TCP up, no pongs, nothing delivered) is detected by the
// ping; the event lost on it is redelivered on the next connection.
func TestZombieDetectedByPing(t *testing.T) {
	h := newHarness(t, fastOptions(), func(c *Config) { c.RequestTimeout = 300 * time.Millisecond })
	h.connected()
	zombie := h.fake.Zombie()
	lost := h.fake.PushEvent(dm("sent into the void"))
	st := h.st.WaitPhase(t, adapter.PhaseReconnecting, wait)
	if st.Err == nil || !strings.Contains(st.Err.Error(), "ping") {
		t.Fatalf("reconnecting because of %v, want the failed ping", st.Err)
	}
	next := h.fake.WaitHellos(t, 2, wait)
	if next == zombie {
		t.Fatal("no new connection")
	}
	if a := h.fake.WaitAck(t, lost.EventID, wait); a.Conn != next || a.RetryAttempt < 1 {
		t.Fatalf("ack %+v, want the redelivery on connection %d", a, next)
	}
	if got := h.inbox.WaitN(t, 1, wait); got[0].Text != "sent into the void" {
		t.Fatalf("stored %+v", got[0])
	}
}

// Stop returns within 100 ms of its context ending in every state, and
// within its budget when it ends gracefully; no goroutine remains
// (checkLeaks).
func TestStopBounded(t *testing.T) {
	states := []struct {
		name  string
		setup func(h *harness)
	}{
		{"before hello", func(h *harness) {
			h.fake.HoldHello(true)
			h.start()
			h.fake.WaitConns(h.t, 1, wait)
		}},
		{"apps.connections.open black-holed", func(h *harness) {
			h.fake.Inject(slacktest.Open, fakeserver.Blackhole())
			h.start()
			h.fake.WaitOpens(h.t, 1, wait)
		}},
		{"websocket handshake black-holed", func(h *harness) {
			h.fake.Inject(slacktest.Upgrade, fakeserver.Blackhole())
			h.start()
			h.fake.WaitHoleConns(h.t, 1, wait)
		}},
		{"connected idle", func(h *harness) { h.connected() }},
		{"refresh with two connections", func(h *harness) {
			h.connected()
			h.fake.HoldHello(true)
			h.fake.Disconnect("refresh_requested")
			h.fake.WaitConns(h.t, 2, wait)
		}},
		{"after a refresh", func(h *harness) {
			old := h.connected()
			h.fake.Disconnect("warning")
			h.fake.WaitClosed(h.t, old, wait)
		}},
		{"backing off", func(h *harness) {
			h.a.backoff.Min = time.Hour
			h.fake.Inject(slacktest.Open, fakeserver.Reject(http.StatusOK).WithCode("internal_error").Times(1))
			h.start()
			h.st.WaitPhase(h.t, adapter.PhaseReconnecting, wait)
		}},
		{"Deliver blocks", func(h *harness) {
			h.connected()
			release := h.inbox.Block()
			h.t.Cleanup(release)
			h.fake.PushEvent(dm("stuck"))
			h.waitCalls(1)
		}},
		{"zombie connection", func(h *harness) {
			h.connected()
			h.fake.Zombie()
		}},
		{"fatal", func(h *harness) {
			h.fake.Inject(slacktest.Open, fakeserver.Reject(http.StatusOK).WithCode("invalid_auth").Times(1))
			h.start()
			h.st.WaitPhase(h.t, adapter.PhaseFatal, wait)
		}},
	}
	for _, s := range states {
		t.Run(s.name+"/context ended", func(t *testing.T) {
			h := newHarness(t, slacktest.Options{DisconnectGrace: time.Minute}, func(c *Config) { c.PingInterval = time.Minute })
			s.setup(h)
			adaptertest.StopWithin(t, h.a)
			if st := h.st.Last(); st.Phase != adapter.PhaseStopped {
				t.Fatalf("last status %+v, want stopped", st)
			}
		})
		t.Run(s.name+"/graceful", func(t *testing.T) {
			h := newHarness(t, slacktest.Options{DisconnectGrace: time.Minute}, func(c *Config) { c.PingInterval = time.Minute })
			h.a.closeWait = 2 * time.Second // the production bound; ctx is shorter
			s.setup(h)
			live := h.fake.Live()
			adaptertest.StopAfter(t, h.a, 300*time.Millisecond)
			for _, id := range live {
				if s.name == "zombie connection" {
					continue
				}
				if code := h.fake.WaitClosed(t, id, wait); code != websocket.StatusNormalClosure {
					t.Fatalf("connection %d closed with %v, want 1000", id, code)
				}
			}
		})
	}
}

// The graceful stop waits for Slack's answer to the close frame, but never
// longer than closeWait.
func TestStopWaitsAtMostCloseWait(t *testing.T) {
	h := newHarness(t, fastOptions(), func(c *Config) { c.PingInterval = time.Minute })
	h.a.closeWait = 200 * time.Millisecond
	h.connected()
	h.fake.Zombie()
	h.fake.Inject(slacktest.Open, fakeserver.Blackhole())
	tm := adaptertest.StartTiming()
	if err := h.a.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	tm.Check(t, "Stop with the close wait", h.a.closeWait+adaptertest.StopBound)
}

// Cancelling Start's context ends intake like Stop: close frame, no
// goroutines.
func TestStartContextEndsIntake(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	if err := h.a.Start(ctx, h.inbox); err != nil {
		t.Fatal(err)
	}
	h.t.Cleanup(func() { adaptertest.StopWithin(t, h.a) })
	id := h.fake.WaitHellos(t, 1, wait)
	h.st.WaitPhase(t, adapter.PhaseConnected, wait)
	cancel()
	if code := h.fake.WaitClosed(t, id, wait); code != websocket.StatusNormalClosure {
		t.Fatalf("closed with %v, want 1000", code)
	}
	select {
	case <-h.a.Life.Done():
	case <-time.After(wait):
		t.Fatal("goroutines still running after Start's context ended")
	}
}

// A failed websocket handshake is retried, and the connection ticket in
// the URL never reaches the status (which is shown to operators).
func TestHandshakeFailureIsRetriedWithoutTicket(t *testing.T) {
	h := newHarness(t, fastOptions(), nil)
	h.fake.Inject(slacktest.Upgrade, fakeserver.Reject(503).Times(1))
	h.start()
	st := h.st.WaitPhase(t, adapter.PhaseReconnecting, wait)
	if st.Err == nil || !strings.Contains(st.Err.Error(), "503") || strings.Contains(st.Err.Error(), "ticket=tk-") || strings.Contains(st.Err.Error(), "tk-") {
		t.Fatalf("status error %q: want the HTTP status and no ticket", st.Err)
	}
	if !errors.Is(st.Err, adapter.ErrTemporary) {
		t.Fatalf("status error %v is not temporary", st.Err)
	}
	h.st.WaitPhase(t, adapter.PhaseConnected, wait)
}

// Slack says hello at once; a connection that stays silent is given up
// after request_timeout and a new one is opened.
func TestHelloTimeout(t *testing.T) {
	h := newHarness(t, fastOptions(), func(c *Config) { c.RequestTimeout = 200 * time.Millisecond })
	h.fake.HoldHello(true)
	h.start()
	st := h.st.WaitPhase(t, adapter.PhaseReconnecting, wait)
	if st.Err == nil || !strings.Contains(st.Err.Error(), "hello") {
		t.Fatalf("status error %v, want the missing hello", st.Err)
	}
	h.fake.ReleaseHello()
	h.st.WaitPhase(t, adapter.PhaseConnected, wait)
}
