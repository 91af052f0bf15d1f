// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/metrics"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
	_ "modernc.org/sqlite" // the test opens the store with a connection of its own
)

// newLoggedEnv is newEnv with its log kept for assertions.
func newLoggedEnv(t *testing.T, opts Options, policy Policy) (*env, *logtest.Hook) {
	t.Helper()
	l, hook := logtest.NewNullLogger()
	l.SetLevel(logrus.DebugLevel)
	e := &env{t: t, path: filepath.Join(t.TempDir(), "herald.db"), ad: newFakeAdapter("p"), agent: newFakeAgent(), m: metrics.Nop(), log: logrus.NewEntry(l)}
	e.open(opts, policy)
	return e, hook
}

// logged counts the entries whose message contains substr.
func logged(hook *logtest.Hook, substr string) int {
	n := 0
	for _, en := range hook.AllEntries() {
		if strings.Contains(en.Message, substr) {
			n++
		}
	}
	return n
}

// TestRetryAfterClamped: a platform asking for a 30-day pause gets
// MaxRetryAfter, and the clamp is logged.
func TestRetryAfterClamped(t *testing.T) {
	e, hook := newLoggedEnv(t, Options{MaxRetryAfter: 50 * time.Millisecond}, allowAll)
	e.ad.fail = []error{&adapter.RetryAfterError{After: 30 * 24 * time.Hour, Err: adapter.ErrRateLimited}}
	e.deliver(in("1", "c", "u", "hi"))
	e.ad.waitSent(t, 1)
	if n := logged(hook, "longer pause than herald waits"); n != 1 {
		t.Fatalf("clamp logged %d times, want 1", n)
	}
	for _, en := range hook.AllEntries() {
		if strings.Contains(en.Message, "longer pause") && en.Data["retry_after"] != 30*24*time.Hour {
			t.Errorf("clamp log retry_after = %v", en.Data["retry_after"])
		}
	}
}

// failFinishes makes the store refuse to record the end of any turn, as a
// full disk does, until the returned function is called: a trigger added
// through a connection of its own aborts every update that finishes an
// inbound message.
func failFinishes(t *testing.T, path string) (restore func()) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TRIGGER test_fail_finish BEFORE UPDATE OF state ON inbound WHEN NEW.state <> 0
		BEGIN SELECT RAISE(ABORT, 'injected write failure'); END`); err != nil {
		db.Close()
		t.Fatal(err)
	}
	return func() {
		defer db.Close()
		if _, err := db.Exec(`DROP TRIGGER test_fail_finish`); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFailedFinishKeepsTheReply: when the end of a turn cannot be written,
// the agent's answer is kept and only the write is retried. The message
// stays tracked, so the orphan sweep does not run its turn again: the agent
// is called once, and the reply goes out once the store takes it.
func TestFailedFinishKeepsTheReply(t *testing.T) {
	e, hook := newLoggedEnv(t, Options{FinishRetryBackoff: 10 * time.Millisecond}, allowAll)
	restore := failFinishes(t, e.path)
	e.deliver(in("1", "c", "u", "hello"))
	testwait.For(t, "the first failed write", func() bool { return logged(hook, "cannot record the end of a turn") > 0 })
	testwait.For(t, "a retried write", func() bool { return logged(hook, "cannot record the end of a turn; retrying") > 0 })
	if st := e.d.Stats(); st.Unrecorded != 1 {
		t.Errorf("Stats().Unrecorded = %d while the store refuses, want 1", st.Unrecorded)
	}
	// Two sweeps make an untracked pending message an orphan and run it.
	e.d.sweepOrphans()
	e.d.sweepOrphans()
	restore()
	got := e.ad.waitSent(t, 1)
	if got[0].Text != "re: hello" {
		t.Fatalf("reply %q", got[0].Text)
	}
	waitDelivered(t, e.st, 1)
	if n := len(e.agent.Calls()); n != 1 {
		t.Fatalf("agent called %d times for one message, want 1", n)
	}
	if st := e.d.Stats(); st.Unrecorded != 0 {
		t.Errorf("Stats().Unrecorded = %d after the write succeeded", st.Unrecorded)
	}
	if n := logged(hook, "end of the turn recorded after the store failed"); n != 1 {
		t.Errorf("recovery logged %d times, want 1", n)
	}
}

// TestPruneKeepsHistoryBounded: the hourly housekeeping prunes session
// history down to what a turn sends (HistoryMessages).
func TestPruneKeepsHistoryBounded(t *testing.T) {
	e := newEnv(t, Options{HistoryMessages: 2}, allowAll)
	for i := 1; i <= 3; i++ {
		e.deliver(in(fmt.Sprint(i), "c", "u", fmt.Sprint("m", i)))
		waitDelivered(t, e.st, i)
	}
	key := in("x", "c", "u", "").SessionKey(true)
	if h, _ := e.st.History(context.Background(), key, 0, 100); len(h) != 6 {
		t.Fatalf("history before pruning: %d entries, want 6", len(h))
	}
	e.d.prune()
	h, _ := e.st.History(context.Background(), key, 0, 100)
	if len(h) != 2 || h[0].Content != "m3" || h[1].Content != "re: m3" {
		t.Fatalf("history after pruning: %+v, want the last exchange", h)
	}
}
