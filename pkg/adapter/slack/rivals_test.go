// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// waitAlarm waits for a report with the given alarm after the n-th report
// and returns the index of that report.
func (h *harness) waitAlarm(after int, alarm string) int {
	h.t.Helper()
	found := -1
	testwait.Within(h.t, wait, fmt.Sprintf("a connected report with alarm %q", alarm), func() bool {
		for i, st := range h.st.All() {
			if i >= after && st.Phase == adapter.PhaseConnected && st.Alarm == alarm {
				found = i
				return true
			}
		}
		return false
	})
	return found
}

// logged counts entries at level whose message contains text.
func (h *harness) logged(level logrus.Level, text string) int {
	n := 0
	for _, e := range h.logs.AllEntries() {
		if e.Level == level && strings.Contains(e.Message, text) {
			n++
		}
	}
	return n
}

// Another client holding a connection of the app (Slack counts it in
// num_connections) raises the alarm once the excess has lasted
// conflict_window, and the alarm clears once the other client is gone.
func TestAnotherClientRaisesTheAlarm(t *testing.T) {
	h := newHarness(t, fastOptions(), func(c *Config) { c.ConflictWindow = 300 * time.Millisecond })
	h.fake.SetOthers(1)
	h.connected()
	if st := h.st.WaitPhase(t, adapter.PhaseConnected, wait); st.Alarm != "" {
		t.Fatalf("alarm at the first sight of the excess: %+v", st)
	}
	if h.logged(logrus.WarnLevel, "looking again after conflict_window") != 1 {
		t.Fatalf("no warning at the first sight of the excess: %v", h.logs.AllEntries())
	}
	raised := h.waitAlarm(0, RivalAlarm)
	if h.logged(logrus.ErrorLevel, "another client holds a Socket Mode connection") == 0 {
		t.Fatal("the alarm was raised without an error log")
	}
	if n := h.fake.Opens(); n < 2 {
		t.Fatalf("alarm after %d apps.connections.open calls: raised without a second look", n)
	}

	h.fake.SetOthers(0)
	h.waitAlarm(raised+1, "")
	if h.logged(logrus.InfoLevel, "alarm cleared") != 1 {
		t.Fatalf("alarm cleared without a log line: %v", h.logs.AllEntries())
	}
	// Looking again is not reconnecting.
	if n := h.m.ReconnectCount(); n != 0 {
		t.Fatalf("%d reconnects counted, want 0", n)
	}
	for _, st := range h.st.All() {
		if st.Phase != adapter.PhaseStarting && st.Phase != adapter.PhaseConnected {
			t.Fatalf("reported %+v while every connection was fine", st)
		}
	}
}

// herald's own switch to the next connection (two connections for a
// moment, both counted by Slack) is not another client, even with a
// conflict_window long past.
func TestOwnSwitchIsNotAnotherClient(t *testing.T) {
	h := newHarness(t, fastOptions(), func(c *Config) { c.ConflictWindow = time.Millisecond })
	old := h.connected()
	h.fake.HoldHello(true)
	h.fake.Disconnect("refresh_requested")
	testwait.Within(t, wait, "the next connection", func() bool { return h.fake.Conns() == 2 })
	h.fake.ReleaseHello()
	h.fake.WaitHellos(t, 2, wait)
	if code := h.fake.WaitClosed(t, old, wait); code != websocket.StatusNormalClosure {
		t.Fatalf("old connection closed with %v", code)
	}
	for _, st := range h.st.All() {
		if st.Alarm != "" {
			t.Fatalf("alarm on herald's own switch: %+v", st)
		}
	}
	if n := h.logged(logrus.WarnLevel, "Socket Mode connections") + h.logged(logrus.ErrorLevel, "Socket Mode connection"); n != 0 {
		t.Fatalf("%d warnings about another client on herald's own switch", n)
	}
	if n := h.fake.Opens(); n != 2 {
		t.Fatalf("apps.connections.open called %d times, want 2 (no second look)", n)
	}
}

// A connection Slack still counts after herald let it go (the previous
// instance's right after a restart, or one dropped after a network
// failure) is a warning, and a second look that finds it gone raises
// nothing.
func TestConnectionStillClosingIsNoAlarm(t *testing.T) {
	h := newHarness(t, fastOptions(), func(c *Config) { c.ConflictWindow = 3 * time.Second })
	h.fake.SetOthers(1)
	first := h.connected()
	h.fake.SetOthers(0) // the lingering connection is gone
	if h.logged(logrus.WarnLevel, "most likely one still closing") != 1 {
		t.Fatalf("no warning for the lingering connection: %v", h.logs.AllEntries())
	}
	h.fake.WaitHellos(t, 2, 2*wait) // the second look
	h.fake.WaitClosed(t, first, wait)
	for _, st := range h.st.All() {
		if st.Alarm != "" || (st.Phase != adapter.PhaseStarting && st.Phase != adapter.PhaseConnected) {
			t.Fatalf("reported %+v for a connection that went away within conflict_window", st)
		}
	}
	if n := h.fake.Opens(); n != 2 {
		t.Fatalf("apps.connections.open called %d times, want 2 (one second look)", n)
	}
}

// The alarm needs an excess that lasts conflict_window: a second excess
// seen sooner (a refresh in between) is not yet one, and a hello without
// excess starts over.
func TestRivalsNeedAPersistentExcess(t *testing.T) {
	env, _, _ := adaptertest.Env(t, "slack")
	r := rivals{window: time.Minute}
	t0 := time.Now()
	hello := func(counted, held int, at time.Duration) (bool, string) {
		again := r.observe(&conn{log: env.Log, counted: counted, held: held}, t0.Add(at))
		return again, r.alarm
	}
	steps := []struct {
		counted, held int
		at            time.Duration
		again         bool
		alarm         string
	}{
		{1, 1, 0, false, ""},
		{2, 1, time.Second, true, ""},                    // first sight
		{3, 2, 30 * time.Second, true, ""},               // a refresh, 29s later
		{2, 1, 61 * time.Second, true, RivalAlarm},       // still there a minute after the first sight
		{3, 2, 62 * time.Second, true, RivalAlarm},       // herald's own switch keeps it up
		{2, 2, 2 * time.Minute, false, ""},               // gone: cleared
		{2, 1, 2*time.Minute + time.Second, true, ""},    // a new excess starts over
		{2, 1, 2*time.Minute + 59*time.Second, true, ""}, // not yet a minute
		{2, 1, 3*time.Minute + time.Second, true, RivalAlarm},
	}
	for i, s := range steps {
		if again, alarm := hello(s.counted, s.held, s.at); again != s.again || alarm != s.alarm {
			t.Fatalf("step %d (%d counted, %d held, at %v): again %v alarm %q, want %v %q", i, s.counted, s.held, s.at, again, alarm, s.again, s.alarm)
		}
	}
}
