// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	_ "github.com/heraldgw/herald/pkg/adapter/all"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/metrics"
)

// idleAdapter is an adapter that is never started: leasedChanged compares
// adapters by identity only.
type idleAdapter struct{ _ byte }

func (*idleAdapter) Start(context.Context, adapter.Inbox) error { return nil }
func (*idleAdapter) Send(context.Context, *message.Outbound) (adapter.SendResult, error) {
	return adapter.SendResult{}, nil
}
func (*idleAdapter) Stop(context.Context) error { return nil }

// TestBoardStandby: a leased platform in standby is named in STATUS= but
// not counted among the platforms to connect; reportFirst does not
// overwrite a state the platform already reported.
func TestBoardStandby(t *testing.T) {
	b := newBoard(metrics.New("test"))
	b.report("webhook", "webhook", adapter.Status{Phase: adapter.PhaseConnected})
	b.reportFirst("telegram", "telegram", adapter.Status{Phase: adapter.PhaseStandby})
	if c, total, detail := b.summary(); c != 1 || total != 1 || detail != "telegram: standby" {
		t.Fatalf("summary %d/%d %q", c, total, detail)
	}
	b.report("telegram", "telegram", adapter.Status{Phase: adapter.PhaseConnected})
	b.reportFirst("telegram", "telegram", adapter.Status{Phase: adapter.PhaseStandby})
	if c, total, detail := b.summary(); c != 2 || total != 2 || detail != "" {
		t.Fatalf("summary after the intake connected %d/%d %q", c, total, detail)
	}
}

// TestLeasedChanged: in cluster mode a reload may change a leased
// platform's policy, not add, remove or rebuild it; every-node platforms
// are free.
func TestLeasedChanged(t *testing.T) {
	type ad = adapter.Adapter
	tg, tg2, wh, wh2 := &idleAdapter{}, &idleAdapter{}, &idleAdapter{}, &idleAdapter{}
	plat := func(name, typ string, a ad) *platform {
		return &platform{name: name, conf: &config.Platform{Type: typ}, adapter: a}
	}
	current := map[string]*platform{"telegram": plat("telegram", "telegram", tg), "webhook": plat("webhook", "webhook", wh)}
	for _, tt := range []struct {
		name string
		next map[string]*platform
		want []string
	}{
		{"policy only", map[string]*platform{"telegram": plat("telegram", "telegram", tg), "webhook": plat("webhook", "webhook", wh2)}, nil},
		{"rebuilt", map[string]*platform{"telegram": plat("telegram", "telegram", tg2), "webhook": plat("webhook", "webhook", wh)}, []string{"platforms.telegram"}},
		{"removed", map[string]*platform{"webhook": plat("webhook", "webhook", wh)}, []string{"platforms.telegram"}},
		{"added", map[string]*platform{"telegram": plat("telegram", "telegram", tg), "discord": plat("discord", "discord", tg2)}, []string{"platforms.discord"}},
	} {
		if got := leasedChanged(current, tt.next); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestIntakeTrouble: a held platform's intake is handed over when it
// failed, or when it has not connected for intakeStuckAfter while another
// member runs the platform; not while it connects, nor when no other
// member could take it.
func TestIntakeTrouble(t *testing.T) {
	errAuth := errors.New("telegram: 401 Unauthorized")
	errDial := errors.New("dial tcp: i/o timeout")
	for _, c := range []struct {
		st     adapter.Status
		down   time.Duration
		others bool
		want   string
	}{
		{adapter.Status{Phase: adapter.PhaseConnected}, time.Hour, true, ""},
		{adapter.Status{Phase: adapter.PhaseFatal, Err: errAuth}, 0, false, "failed: telegram: 401 Unauthorized"},
		{adapter.Status{Phase: adapter.PhaseFatal}, 0, true, "failed"},
		{adapter.Status{Phase: adapter.PhaseReconnecting, Err: errDial}, intakeStuckAfter - time.Second, true, ""},
		{adapter.Status{Phase: adapter.PhaseReconnecting, Err: errDial}, intakeStuckAfter, true, "not connected for 2m0s (reconnecting: dial tcp: i/o timeout)"},
		{adapter.Status{Phase: adapter.PhaseStarting}, 3 * time.Minute, true, "not connected for 3m0s (starting)"},
		{adapter.Status{Phase: adapter.PhaseReconnecting, Err: errDial}, time.Hour, false, ""},
	} {
		if got := intakeTrouble(c.st, c.down, c.others); got != c.want {
			t.Errorf("intakeTrouble(%s, %v, others %v) = %q, want %q", c.st.Phase, c.down, c.others, got, c.want)
		}
	}
}

// TestDeclineFor: a platform is declined for 1 minute, doubled at each
// decline since its intake was last seen connected, up to 16.
func TestDeclineFor(t *testing.T) {
	for k, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 16 * time.Minute, 16 * time.Minute} {
		if got := declineFor(k); got != want {
			t.Errorf("declineFor(%d) = %v, want %v", k, got, want)
		}
	}
	if got := declineFor(1000); got != declineMax {
		t.Errorf("declineFor(1000) = %v, want %v", got, declineMax)
	}
}
