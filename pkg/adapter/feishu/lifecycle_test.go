// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
	"github.com/heraldgw/herald/pkg/adapter/feishu/feishutest"
	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

func TestBootstrapServerErrorsAreRetried(t *testing.T) {
	for _, mode := range []feishutest.BootstrapMode{
		feishutest.BootstrapHTTP500, feishutest.BootstrapBusy, feishutest.BootstrapInternal, feishutest.BootstrapEmptyURL,
	} {
		t.Run(map[feishutest.BootstrapMode]string{
			feishutest.BootstrapHTTP500: "http 500", feishutest.BootstrapBusy: "code 1",
			feishutest.BootstrapInternal: "code 1000040343", feishutest.BootstrapEmptyURL: "empty URL",
		}[mode], func(t *testing.T) {
			h := newHarness(t, feishutest.Options{}, nil)
			h.fake.SetBootstrapMode(mode)
			h.start()
			st := h.st.WaitPhase(t, adapter.PhaseReconnecting, wait)
			if !errors.Is(st.Err, adapter.ErrTemporary) || st.RetryAt.IsZero() {
				t.Errorf("reconnecting status %+v", st)
			}
			h.fake.WaitBootstraps(t, 3, wait)
			h.fake.SetBootstrapMode(feishutest.BootstrapOK)
			h.st.WaitPhase(t, adapter.PhaseConnected, wait)
			if h.m.ReconnectCount() < 2 {
				t.Errorf("reconnects counted: %d", h.m.ReconnectCount())
			}
		})
	}
}

// TestFatalErrorsStopRetrying: errors no retry can fix end in PhaseFatal
// and the adapter makes no further attempt.
func TestFatalErrorsStopRetrying(t *testing.T) {
	tests := []struct {
		name    string
		opts    feishutest.Options
		setup   func(*feishutest.Server)
		wantErr error
		wantWS  int
	}{
		{"bad credentials", feishutest.Options{AppSecret: "not-the-configured-one"}, nil, adapter.ErrUnauthorized, 0},
		{"connection limit at bootstrap", feishutest.Options{}, func(s *feishutest.Server) {
			s.SetBootstrapMode(feishutest.BootstrapConnLimit)
		}, adapter.ErrPermanent, 0},
		{"handshake 403", feishutest.Options{}, func(s *feishutest.Server) { s.Inject(feishutest.Handshake, fakeserver.Reject(403)) }, adapter.ErrUnauthorized, 1},
		{"handshake 514 connection limit", feishutest.Options{}, func(s *feishutest.Server) {
			s.Inject(feishutest.Handshake, fakeserver.Reject(514).WithCode("1000040350"))
		}, adapter.ErrPermanent, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.opts, nil)
			if tt.setup != nil {
				tt.setup(h.fake)
			}
			h.start()
			st := h.st.WaitPhase(t, adapter.PhaseFatal, wait)
			if !errors.Is(st.Err, tt.wantErr) {
				t.Errorf("fatal error %v, want %v", st.Err, tt.wantErr)
			}
			adaptertest.RequireEvent(t, h.logs, logging.MsgAdapterFatal)
			h.waitRunDone()
			if n := len(h.fake.Bootstraps()); n != 1 {
				t.Errorf("%d bootstrap attempts, want 1", n)
			}
			if n := h.fake.WSAttempts(); n != tt.wantWS {
				t.Errorf("%d websocket attempts, want %d", n, tt.wantWS)
			}
			for _, s := range h.st.All() {
				if s.Phase == adapter.PhaseReconnecting {
					t.Errorf("reported %q before giving up", s.Phase)
				}
			}
		})
	}
}

func TestHandshake514OtherCodeIsRetried(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	h.fake.Inject(feishutest.Handshake, fakeserver.Reject(514).WithCode("1000040351"))
	h.start()
	h.st.WaitPhase(t, adapter.PhaseReconnecting, wait)
	h.fake.WaitWSAttempts(t, 2, wait)
	h.fake.Heal(feishutest.Handshake)
	h.st.WaitPhase(t, adapter.PhaseConnected, wait)
	if n := len(h.fake.Bootstraps()); n < 2 {
		t.Errorf("%d bootstraps: every attempt must bootstrap again", n)
	}
}

// TestReconnectAfterAbruptClose: the platform drops the TCP connection
// without a close frame; the adapter bootstraps again (new URL and ticket)
// and events flow on the new connection.
func TestReconnectAfterAbruptClose(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	h.connect()
	h.fake.DropConnections()
	h.st.WaitPhase(t, adapter.PhaseReconnecting, wait)
	h.fake.WaitBootstraps(t, 2, wait)
	h.fake.WaitConnections(t, 2, wait)
	testwait.For(t, "a second connected report", func() bool {
		n := 0
		for _, s := range h.st.All() {
			if s.Phase == adapter.PhaseConnected {
				n++
			}
		}
		return n == 2
	})
	id := h.fake.Push(feishutest.Event{Text: "after reconnect"})
	if msgs := h.inbox.WaitN(t, 1, wait); msgs[0].EventID != id {
		t.Errorf("stored %+v", msgs[0])
	}
	if h.m.ReconnectCount() < 1 {
		t.Error("reconnect not counted")
	}
}

// TestPingIntervalFromPong: a ping goes out as soon as the connection is
// up, and a ClientConfig in a pong re-arms the ping timer.
func TestPingIntervalFromPong(t *testing.T) {
	h := newHarness(t, feishutest.Options{Config: &feishutest.ClientConfig{
		ReconnectCount: -1, ReconnectInterval: 1, PingInterval: 100,
	}}, nil)
	h.fake.SetPongConfig(&feishutest.ClientConfig{PingInterval: 1})
	h.connect()
	h.fake.WaitPings(t, 2, wait) // with the bootstrap's 100 s the second ping would not come
	if got := h.a.clientConfig().pingInterval; got != time.Second {
		t.Errorf("ping interval %v, want the pong's 1s", got)
	}
	if p := h.fake.Pings(); p[1].Sub(p[0]) < 500*time.Millisecond {
		t.Errorf("second ping %v after the first, want about 1s", p[1].Sub(p[0]))
	}
}

// TestHostileClientConfig: intervals far out of range, in the bootstrap and
// in a pong, are clamped (and each clamp logged) instead of overflowing:
// PingInterval 9.3e9 s used to become a negative duration, so the ping loop
// spun and the read deadline was already past.
func TestHostileClientConfig(t *testing.T) {
	const huge = 9_300_000_000
	hostile := &feishutest.ClientConfig{ReconnectCount: -1, ReconnectInterval: huge, ReconnectNonce: huge, PingInterval: huge}
	h := newHarness(t, feishutest.Options{Config: hostile}, nil)
	h.fake.SetPongConfig(hostile) // the answer to the first ping
	h.connect()
	testwait.For(t, "clamps of the three intervals, in the bootstrap and the pong", func() bool { return clamps(h) >= 6 })
	want := clientConfig{
		reconnectCount:    -1,
		reconnectInterval: reconnectIntervalBounds[1],
		reconnectNonce:    reconnectNonceBounds[1],
		pingInterval:      pingIntervalBounds[1],
	}
	if got := h.a.clientConfig(); got != want {
		t.Errorf("client config %+v, want %+v", got, want)
	}
	if n := clamps(h); n != 6 {
		t.Errorf("%d clamps logged, want 6 (one per field and message)", n)
	}
	if n := len(h.fake.Pings()); n != 1 {
		t.Errorf("%d pings, want 1: the next is %v away", n, pingIntervalBounds[1])
	}
}

// clamps counts the logged clamps of platform values.
func clamps(h *harness) int { return len(adaptertest.Clamps(h.logs)) }

// TestReadDeadline: a platform that goes silent is detected after
// 2×PingInterval + grace and the adapter reconnects.
func TestReadDeadline(t *testing.T) {
	h := newHarness(t, feishutest.Options{Config: &feishutest.ClientConfig{
		ReconnectCount: -1, ReconnectInterval: 1, PingInterval: 1,
	}}, nil)
	h.a.timing.readGrace = 50 * time.Millisecond
	h.a.timing.closeWait = 50 * time.Millisecond // the new connection is frozen too
	h.fake.SetFreeze(true)
	h.connect()
	h.st.WaitPhase(t, adapter.PhaseReconnecting, wait)
	h.fake.WaitConnections(t, 2, wait)
}

func TestReconnectCountExhausted(t *testing.T) {
	h := newHarness(t, feishutest.Options{Config: &feishutest.ClientConfig{
		ReconnectCount: 2, ReconnectInterval: 1, PingInterval: 30,
	}}, nil)
	h.connect()
	h.fake.SetBootstrapMode(feishutest.BootstrapHTTP500)
	h.fake.DropConnections()
	st := h.st.WaitPhase(t, adapter.PhaseFatal, wait)
	h.waitRunDone()
	if n := len(h.fake.Bootstraps()); n != 3 {
		t.Errorf("%d bootstraps, want 1 + 2 retries (%v)", n, st.Err)
	}
}

func TestBackoff(t *testing.T) {
	a := &Adapter{timing: timing{backoffBase: time.Second}}
	cc := clientConfig{reconnectNonce: 30 * time.Second, reconnectInterval: 120 * time.Second}
	for range 100 {
		if d := a.backoff(0, cc); d < 0 || d > 30*time.Second {
			t.Fatalf("first retry %v, want within [0, ReconnectNonce]", d)
		}
	}
	for n, step := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 8: 120 * time.Second, 60: 120 * time.Second} {
		for range 50 {
			if d := a.backoff(n, cc); d < step/2 || d > step {
				t.Fatalf("retry %d: %v, want within [%v, %v]", n, d, step/2, step)
			}
		}
	}
	if d := a.backoff(0, clientConfig{}); d != 0 {
		t.Errorf("no nonce: %v", d)
	}
}

// ---- Stop in every state ----

func TestStopMidBootstrap(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	h.fake.SetBootstrapMode(feishutest.BootstrapBlackhole)
	h.start()
	h.fake.WaitBootstraps(t, 1, wait)
	adaptertest.StopWithin(t, h.a)
	h.assertStopped()
}

func TestStopMidHandshake(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	h.fake.Inject(feishutest.Handshake, fakeserver.Blackhole())
	h.start()
	h.fake.WaitWSAttempts(t, 1, wait)
	adaptertest.StopWithin(t, h.a)
	h.assertStopped()
}

func TestStopConnectedIdle(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	h.connect()
	adaptertest.StopWithin(t, h.a)
	h.assertStopped()
}

// TestStopSendsCloseFrame: with time to spare Stop closes with 1000 and
// the platform sees it.
func TestStopSendsCloseFrame(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	h.connect()
	adaptertest.StopAfter(t, h.a, 3*time.Second)
	h.assertStopped()
	h.fake.WaitCloseCodes(t, 1, wait)
	if got := h.fake.CloseCodes()[0]; got != websocket.StatusNormalClosure {
		t.Errorf("close code %v, want 1000", got)
	}
}

// TestStopCloseUnanswered: the platform never answers the close frame; Stop
// waits closeWait (2 s in production) and no longer, even with a generous
// context, and never past a short context.
func TestStopCloseUnanswered(t *testing.T) {
	t.Run("bounded by closeWait", func(t *testing.T) {
		h := newHarness(t, feishutest.Options{}, nil)
		h.a.timing.closeWait = 300 * time.Millisecond
		h.fake.SetFreeze(true)
		h.connect()
		tm := adaptertest.StartTiming()
		adaptertest.StopAfter(t, h.a, 10*time.Second)
		tm.Check(t, "Stop with the close wait", h.a.timing.closeWait+adaptertest.StopBound)
		h.assertStopped()
	})
	t.Run("bounded by ctx", func(t *testing.T) {
		h := newHarness(t, feishutest.Options{}, nil)
		h.fake.SetFreeze(true)
		h.connect()
		adaptertest.StopAfter(t, h.a, 200*time.Millisecond)
		h.assertStopped()
	})
}

func TestStopMidBackoff(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	// The first retry is immediate (no nonce), the second waits about an
	// hour: the adapter is certainly mid-backoff when Stop comes.
	h.a.timing.backoffBase = time.Hour
	h.a.cc.reconnectInterval = time.Hour
	h.fake.SetBootstrapMode(feishutest.BootstrapHTTP500)
	h.start()
	h.fake.WaitBootstraps(t, 2, wait)
	testwait.For(t, "a retry scheduled far ahead", func() bool {
		st := h.st.Last()
		return st.Phase == adapter.PhaseReconnecting && time.Until(st.RetryAt) > time.Minute
	})
	adaptertest.StopWithin(t, h.a)
	h.assertStopped()
}

func TestStopWhileDeliverBlocks(t *testing.T) {
	for _, graceful := range []bool{false, true} {
		name := map[bool]string{false: "ctx ended", true: "graceful"}[graceful]
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, feishutest.Options{RedeliverAfter: -1}, nil)
			release := h.inbox.Block()
			defer release()
			h.connect()
			h.fake.Push(feishutest.Event{Text: "slow store"})
			testwait.For(t, "Deliver to be called", func() bool { return h.inbox.Calls() == 1 })
			if graceful {
				adaptertest.StopAfter(t, h.a, time.Second)
				h.fake.WaitCloseCodes(t, 1, wait)
			} else {
				adaptertest.StopWithin(t, h.a)
			}
			h.assertStopped()
			if n := len(h.fake.Acks()); n != 0 {
				t.Errorf("%d acks for an event that was never stored", n)
			}
		})
	}
}

// TestStartContextCancel: cancelling Start's context ends intake without
// Stop.
func TestStartContextCancel(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	if err := h.a.Start(ctx, h.inbox); err != nil {
		t.Fatal(err)
	}
	h.st.WaitPhase(t, adapter.PhaseConnected, wait)
	cancel()
	h.waitRunDone()
}
