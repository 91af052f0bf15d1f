// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"context"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/discord/discordtest"
	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// stopStates brings an adapter into each state the Stop contract names.
var stopStates = []struct {
	name  string
	setup func(t *testing.T, h *harness)
}{
	{"mid GET gateway, blackholed", func(t *testing.T, h *harness) {
		h.srv.Inject(discordtest.REST, fakeserver.Blackhole())
		h.start(t)
		h.srv.Await(t, "gateway lookup", wait, func() bool { return h.srv.GatewayRequests() == 1 })
	}},
	{"mid websocket handshake, blackholed", func(t *testing.T, h *harness) {
		h.srv.Inject(discordtest.Gateway, fakeserver.Blackhole())
		h.start(t)
		h.srv.Await(t, "upgrade request", wait, func() bool { return h.srv.Upgrades() == 1 })
	}},
	{"after Hello before READY", func(t *testing.T, h *harness) {
		h.srv.NoReady(true)
		h.start(t)
		h.srv.Await(t, "identify", wait, func() bool { return len(h.srv.Identifies()) == 1 })
	}},
	{"connected idle", func(t *testing.T, h *harness) {
		h.connected(t)
	}},
	{"mid resume", func(t *testing.T, h *harness) {
		h.connected(t)
		h.srv.HoldResume(true)
		if err := h.srv.Drop(); err != nil {
			t.Fatal(err)
		}
		h.srv.Await(t, "resume", wait, func() bool { return len(h.srv.Resumes()) == 1 })
	}},
	{"mid backoff", func(t *testing.T, h *harness) {
		h.a.tun.backoffBase, h.a.tun.backoffMax = time.Hour, time.Hour
		h.srv.SetGatewayStatus(500)
		h.start(t)
		h.status.WaitPhase(t, adapter.PhaseReconnecting, wait)
	}},
	{"while Deliver blocks", func(t *testing.T, h *harness) {
		h.connected(t)
		release := h.inbox.Block()
		t.Cleanup(release)
		h.srv.PushMessage(discordtest.Msg{Content: "slow store"})
		h.srv.Await(t, "deliver called", wait, func() bool { return h.inbox.Calls() == 1 })
	}},
	{"deaf server (close handshake never answered)", func(t *testing.T, h *harness) {
		h.connected(t)
		if err := h.srv.Deafen(); err != nil {
			t.Fatal(err)
		}
		h.srv.Await(t, "server deaf", wait, h.srv.Deafened)
	}},
	{"Deliver blocks, deaf server", func(t *testing.T, h *harness) {
		// No Read in progress whose context could tear the connection
		// down: only closing the TCP connection ends the close handshake.
		h.connected(t)
		release := h.inbox.Block()
		t.Cleanup(release)
		if err := h.srv.Deafen(); err != nil {
			t.Fatal(err)
		}
		h.srv.Await(t, "server deaf", wait, h.srv.Deafened)
		h.srv.PushMessage(discordtest.Msg{Content: "slow store"})
		h.srv.Await(t, "deliver called", wait, func() bool { return h.inbox.Calls() == 1 })
	}},
	{"fatal", func(t *testing.T, h *harness) {
		h.srv.CloseOnIdentify(4014)
		h.start(t)
		h.status.WaitPhase(t, adapter.PhaseFatal, wait)
	}},
}

func TestStopBounded(t *testing.T) {
	for _, withState := range []bool{false, true} {
		name := "in memory"
		if withState {
			// Stop also writes the session to disk first.
			name = "state dir"
		}
		t.Run(name, func(t *testing.T) { testStopBounded(t, withState) })
	}
}

func testStopBounded(t *testing.T, withState bool) {
	harness := func(t *testing.T, srv *discordtest.Server) *harness {
		if withState {
			return newStateHarness(t, srv, t.TempDir())
		}
		return newHarness(t, srv)
	}
	for _, st := range stopStates {
		t.Run(st.name+"/ctx ended", func(t *testing.T) {
			leakCheck(t)
			srv := discordtest.New(t, discordtest.Options{})
			h := harness(t, srv)
			st.setup(t, h)
			adaptertest.StopWithin(t, h.a)
			if p := h.status.Last().Phase; p != adapter.PhaseStopped {
				t.Errorf("last phase %v, want stopped", p)
			}
			if !h.runEnded() {
				t.Error("gateway goroutine still running after Stop")
			}
		})
		t.Run(st.name+"/ctx 150ms", func(t *testing.T) {
			leakCheck(t)
			srv := discordtest.New(t, discordtest.Options{})
			h := harness(t, srv)
			h.a.tun.closeBound = time.Hour // only ctx bounds the close
			st.setup(t, h)
			adaptertest.StopAfter(t, h.a, 150*time.Millisecond)
			if !h.runEnded() {
				t.Error("gateway goroutine still running after Stop")
			}
		})
	}
}

// TestStopGraceful: with time to spare and no state directory, Stop closes
// with 1000 and returns as soon as the handshake is done. With a state
// directory it closes with 4000 (TestRestartResumes).
func TestStopGraceful(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	h.connected(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.a.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("Stop used its whole context")
	}
	// The fake records the code once its side of the handshake is done,
	// which may be just after the adapter's.
	srv.Await(t, "client close recorded", wait, func() bool { return len(srv.ClientCloses()) > 0 })
	if codes := srv.ClientCloses(); len(codes) != 1 || codes[0] != 1000 {
		t.Fatalf("client close codes %v, want [1000]", codes)
	}
	if n := h.metrics.ReconnectCount(); n != 0 {
		t.Errorf("%d reconnects after Stop", n)
	}
	if srv.Connections() != 1 {
		t.Errorf("reconnected after Stop")
	}
}

// TestStopCloseBound: a server that never answers the close frame holds
// Stop for the close bound (2 s by default), not for its whole context.
func TestStopCloseBound(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	h.a.tun.closeBound = 200 * time.Millisecond
	h.connected(t)
	if err := srv.Deafen(); err != nil {
		t.Fatal(err)
	}
	srv.Await(t, "server deaf", wait, srv.Deafened)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tm := adaptertest.StartTiming()
	if err := h.a.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	tm.Check(t, "Stop", h.a.tun.closeBound+adaptertest.StopBound)
}

func TestDefaultCloseBound(t *testing.T) {
	if d := defaultTunables().closeBound; d > 2*time.Second {
		t.Fatalf("close bound %v exceeds the 2 s the issue allows", d)
	}
}

func TestStopLifecycle(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	// Stop before Start: nothing to do, but reported and idempotent.
	adaptertest.StopWithin(t, h.a)
	adaptertest.StopWithin(t, h.a)
	if p := h.status.Last().Phase; p != adapter.PhaseStopped {
		t.Errorf("phase %v after Stop", p)
	}
	if err := h.a.Start(context.Background(), h.inbox); err == nil {
		t.Fatal("Start after Stop succeeded")
	}
	if srv.GatewayRequests() != 0 {
		t.Fatal("network I/O after Stop")
	}
}

// TestStartContextEnds: the intake is bound to Start's context too.
func TestStartContextEnds(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	if err := h.a.Start(ctx, h.inbox); err != nil {
		t.Fatal(err)
	}
	h.status.WaitPhase(t, adapter.PhaseConnected, wait)
	cancel()
	srv.Await(t, "gateway goroutine ended", wait, h.runEnded)
}
