// SPDX-License-Identifier: Apache-2.0

package storetest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/store"
)

// Status is what the daemon reads besides dispatch.Store (the send and
// turn APIs, status, the pairing import). RunStatus runs its contract.
type Status interface {
	Backend
	SendStatus(ctx context.Context, id int64) (store.SendRecord, error)
	TurnStatus(ctx context.Context, id int64) (store.TurnRecord, error)
	RunsInFlight(ctx context.Context) (int, error)
	TopUsers(ctx context.Context, n int) ([]store.UserUsage, error)
	ImportPairingFile(ctx context.Context, path string) (added int, imported bool, err error)
}

// RunStatus runs the contract of Status; the backends fresh opens must
// implement it.
func RunStatus(t *testing.T, fresh func(t *testing.T) Opener) {
	status := func(t *testing.T, open Opener, now func() time.Time) Status {
		t.Helper()
		s, ok := open(t, now).(Status)
		if !ok {
			t.Fatal("the backend does not implement storetest.Status")
		}
		return s
	}
	t.Run("SendStatus", func(t *testing.T) { testSendStatus(t, status(t, fresh(t), nil)) })
	t.Run("TurnStatus", func(t *testing.T) { testTurnStatus(t, status(t, fresh(t), nil)) })
	t.Run("RunsInFlight", func(t *testing.T) { testRunsInFlight(t, status(t, fresh(t), nil)) })
	t.Run("TopUsers", func(t *testing.T) {
		clock := NewClock(time.Date(2026, 3, 4, 10, 20, 30, 0, time.UTC))
		testTopUsers(t, status(t, fresh(t), clock.Now), clock)
	})
	t.Run("ImportPairingFileOnce", func(t *testing.T) { testImportPairing(t, status(t, fresh(t), nil)) })
}

func testSendStatus(t *testing.T, s Status) {
	parts := []message.Outbound{
		{Platform: "p", ChatID: "c", Text: "a", IdempotencyKey: "s1-0"},
		{Platform: "p", ChatID: "c", Text: "b", Part: 1, IdempotencyKey: "s1-1"},
	}
	id, recs, _, err := s.AddSend(bg, "key1", "sk", "p", "c", parts)
	noErr(t, err)
	noErr(t, s.Delivered(bg, recs[0].ID, 1, "m1"))
	noErr(t, s.Retry(bg, recs[1].ID, 2, time.Now(), "busy"))
	rec := must(s.SendStatus(bg, id))(t)
	if rec.Key != "key1" || rec.Platform != "p" || rec.ChatID != "c" || len(rec.Parts) != 2 ||
		rec.Parts[0].State != store.OutboxDelivered || rec.Parts[0].PlatformMsgID != "m1" ||
		rec.Parts[1].State != store.OutboxPending || rec.Parts[1].Attempts != 2 || rec.Parts[1].LastError != "busy" {
		t.Fatalf("send status = %+v", rec)
	}
	if _, err := s.SendStatus(bg, id+1000); !errors.Is(err, store.ErrNoSend) {
		t.Fatalf("unknown send: %v", err)
	}
}

func testTurnStatus(t *testing.T, s Status) {
	recs := queueReplies(t, s, "e1", 3)
	noErr(t, s.GiveUp(bg, recs[1].ID, 1, "gone"))
	id := recs[0].InboundID
	rec := must(s.TurnStatus(bg, id))(t)
	if rec.State != store.Done || rec.Msg.EventID != "e1" || len(rec.Replies) != 3 ||
		rec.Replies[1].State != store.OutboxFailed || rec.Replies[1].LastError != "gone" || rec.Replies[2].State != store.OutboxPending {
		t.Fatalf("turn status = %+v", rec)
	}
	pending := add(t, s, "e2")
	if rec := must(s.TurnStatus(bg, pending))(t); rec.State != store.Pending || len(rec.Replies) != 0 {
		t.Fatalf("pending turn = %+v", rec)
	}
	if _, err := s.TurnStatus(bg, pending+1000); !errors.Is(err, store.ErrNoInbound) {
		t.Fatalf("unknown turn: %v", err)
	}
}

func testRunsInFlight(t *testing.T, s Status) {
	a, b := add(t, s, "a"), add(t, s, "b")
	noErr(t, s.SetRun(bg, a, "run_a", []byte("{}")))
	noErr(t, s.SetRun(bg, b, "run_b", []byte("{}")))
	if n := must(s.RunsInFlight(bg))(t); n != 2 {
		t.Fatalf("in flight %d, want 2", n)
	}
	if _, err := s.Finish(bg, a, store.Done, "k", 0, nil, nil); err != nil {
		t.Fatal(err)
	}
	if n := must(s.RunsInFlight(bg))(t); n != 1 {
		t.Fatalf("in flight after a finish %d, want 1", n)
	}
}

func testTopUsers(t *testing.T, s Status, clock *Clock) {
	b := store.Budget{PerMinute: 100, PerDay: 100}
	for i, sender := range []string{"x", "y", "y", "z", "y", "x"} {
		m := msg(string(rune('a'+i)), "c", "t")
		m.SenderID = sender
		if _, _, _, err := s.AddInboundBudget(bg, "k", m, b); err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			clock.Set(clock.Now().Add(time.Minute))
		}
	}
	top := must(s.TopUsers(bg, 2))(t)
	if len(top) != 2 || top[0].UserID != "y" || top[0].Today != 3 || top[0].ThisMinute != 1 || top[1].UserID != "x" || top[1].Today != 2 {
		t.Fatalf("top users = %+v", top)
	}
}

// The import file approves its users once: a restart (a second import of
// the same file) neither duplicates them nor brings back a revoked one.
func testImportPairing(t *testing.T, s Status) {
	path := filepath.Join(t.TempDir(), store.PairingImportFile)
	if n, fresh, err := s.ImportPairingFile(bg, path); err != nil || fresh || n != 0 {
		t.Fatalf("missing file: %d %v %v", n, fresh, err)
	}
	noErr(t, os.WriteFile(path, []byte(`{"approved":{"telegram":["111","222"],"slack":["U1"]}}`), 0o600))
	if n, fresh, err := s.ImportPairingFile(bg, path); err != nil || !fresh || n != 3 {
		t.Fatalf("first import: %d %v %v", n, fresh, err)
	}
	paired := func() string {
		_, users := must2(t, s)
		var out []string
		for _, u := range users {
			out = append(out, u.Platform+"/"+u.UserID)
		}
		sort.Strings(out)
		return strings.Join(out, " ")
	}
	if got := paired(); got != "slack/U1 telegram/111 telegram/222" {
		t.Fatalf("paired after import: %s", got)
	}
	if ok, err := s.RevokePairing(bg, "telegram", "222"); err != nil || !ok {
		t.Fatalf("revoke: %v %v", ok, err)
	}
	if n, fresh, err := s.ImportPairingFile(bg, path); err != nil || fresh || n != 0 {
		t.Fatalf("second import: %d %v %v", n, fresh, err)
	}
	if got := paired(); got != "slack/U1 telegram/111" {
		t.Fatalf("paired after second import: %s", got)
	}
	noErr(t, os.WriteFile(path, []byte(`{"approved":{"telegram":["111","333","333"]}}`), 0o600))
	if n, fresh, err := s.ImportPairingFile(bg, path); err != nil || !fresh || n != 1 {
		t.Fatalf("new file: %d %v %v", n, fresh, err)
	}
	noErr(t, os.WriteFile(path, []byte(`{"approve":{}}`), 0o600))
	if _, _, err := s.ImportPairingFile(bg, path); err == nil {
		t.Fatal("bad file imported")
	}
	// A refused file leaves the store importing: the next file imports.
	noErr(t, os.WriteFile(path, []byte(`{"approved":{"slack":["U2"]}}`), 0o600))
	if n, fresh, err := s.ImportPairingFile(bg, path); err != nil || !fresh || n != 1 {
		t.Fatalf("fixed file: %d %v %v", n, fresh, err)
	}
}
