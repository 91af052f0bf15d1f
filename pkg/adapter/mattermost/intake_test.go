// SPDX-License-Identifier: Apache-2.0

package mattermost

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/mattermost/mattermosttest"
	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/message"
)

func TestPostedEventBecomesMessage(t *testing.T) {
	h := newHarness(t, nil, "", nil)
	h.connected(t)
	p := h.fake.Post("town", "ann", "hey @Herald, status?", "root1")
	got := h.inbox.WaitN(t, 1, wait)[0]
	want := message.Inbound{Platform: TypeName, EventID: p.ID, ChatID: "town", ChatType: message.ChatChannel,
		ThreadID: "root1", SenderID: "ann", MessageID: p.ID, Text: "hey @Herald, status?"}
	got.ReceivedAt = time.Time{}
	if gj, wj := mustJSON(t, got), mustJSON(t, &want); gj != wj {
		t.Fatalf("message\n got %s\nwant %s", gj, wj)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMentionGatingAndSkips(t *testing.T) {
	h := newHarness(t, nil, "", nil)
	h.connected(t)
	h.fake.Post("town", "ann", "no mention here", "")
	h.fake.Post("town", "ann", "@heraldbot is someone else", "")
	h.fake.Post("town", mmBot(), "my own post", "")
	h.fake.Post("town", "ann", "   ", "")
	h.fake.Post("dm", "ann", "direct messages need no mention", "")
	last := h.fake.Post("town", "ann", "@herald.", "")
	msgs := h.inbox.WaitN(t, 2, wait)
	if msgs[0].Text != "direct messages need no mention" || msgs[0].ChatType != message.ChatDirect || msgs[1].EventID != last.ID {
		t.Fatalf("stored %+v %+v", msgs[0], msgs[1])
	}
	if n := len(h.inbox.Messages()); n != 2 {
		t.Fatalf("%d messages stored, want 2", n)
	}
	if n := h.metrics.Rejections("not_mentioned"); n != 2 {
		t.Errorf("not_mentioned counted %d times, want 2", n)
	}
	if n := h.metrics.Rejections("no_text"); n != 1 {
		t.Errorf("no_text counted %d times, want 1", n)
	}
}

func TestMentionOnlyOff(t *testing.T) {
	h := newHarness(t, nil, "", func(c *Config) { c.MentionOnly = false })
	h.connected(t)
	h.fake.Post("town", "ann", "no mention here", "")
	h.inbox.WaitN(t, 1, wait)
}

func TestMentions(t *testing.T) {
	for _, c := range []struct {
		text string
		want bool
	}{
		{"@herald hi", true},
		{"hi @HERALD", true},
		{"hi @herald.", true},
		{"hi @herald, you", true},
		{"@herald_bot", false},
		{"@herald.bot", false},
		{"@heraldx @herald", true},
		{"herald", false},
		{"email@herald", true},
		{"", false},
	} {
		if got := mentions(c.text, "herald"); got != c.want {
			t.Errorf("mentions(%q) = %v, want %v", c.text, got, c.want)
		}
	}
}

// Posts made while no websocket is connected are fetched through REST at
// the next connection.
func TestCatchUpAfterDisconnect(t *testing.T) {
	h := newHarness(t, nil, "", nil)
	h.connected(t)
	h.fake.RefuseWebsocket(true)
	dials := h.fake.Dials()
	h.fake.Disconnect()
	h.fake.Wait(t, wait, "a refused reconnection", func() bool { return h.fake.Dials() > dials })
	if h.fake.Connections() != 0 {
		t.Fatal("a websocket is still connected")
	}
	a := h.fake.Post("dm", "ann", "sent while herald was away", "")
	b := h.fake.Post("town", "bob", "@herald also while away", "")
	h.fake.RefuseWebsocket(false)
	msgs := h.inbox.WaitN(t, 2, wait)
	if msgs[0].EventID != a.ID || msgs[1].EventID != b.ID {
		t.Fatalf("caught up %q, %q; want %q then %q", msgs[0].Text, msgs[1].Text, a.Message, b.Message)
	}
	if h.fake.Requests("GET /api/v4/channels/dm/posts") == 0 {
		t.Fatal("no catch-up request")
	}
}

// The cursor survives a restart: a post made while herald was down is
// fetched by the next process.
func TestCursorSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, nil, dir, nil)
	h.connected(t)
	one := h.fake.Post("dm", "ann", "one", "")
	h.inbox.WaitN(t, 1, wait)
	h.stop(t)
	if got := readCursor(t, dir); got != one.CreateAt {
		t.Fatalf("saved cursor %d, want create_at %d of the stored post", got, one.CreateAt)
	}
	two := h.fake.Post("dm", "ann", "two, while herald was down", "")
	h2 := newHarness(t, h.fake, dir, nil)
	h2.start(t)
	eventually(t, "the second message", func() bool {
		for _, m := range h2.inbox.Messages() {
			if m.EventID == two.ID {
				return true
			}
		}
		return false
	})
	// The cursor is saved after the post is stored: wait for it.
	eventually(t, "the cursor of the second message saved", func() bool { return readCursor(t, dir) == two.CreateAt })
}

// TestCursorMovesToAnotherNode: in cluster mode the cursor is kept in
// the cluster's store (a States shared by every node), not in a node's
// state directory. The instance that takes the platform over on another
// node, whose own directory is empty, catches up the post made while no
// instance ran (starting from its own first connection, it would not).
func TestCursorMovesToAnotherNode(t *testing.T) {
	shared := &adaptertest.States{}
	var dirs []string
	onNode := func(fake *mattermosttest.Server) *harness {
		dir := t.TempDir()
		dirs = append(dirs, dir)
		return newHarnessEnv(t, fake, func(env *adapter.Env) { env.StateDir, env.States = dir, shared }, nil)
	}
	sharedCursor := func() int64 {
		var c savedCursor
		if err := json.Unmarshal([]byte(shared.Get(cursorFileName)), &c); err != nil {
			return 0
		}
		return c.LastPostAt
	}
	h := onNode(nil)
	h.connected(t)
	one := h.fake.Post("dm", "ann", "one", "")
	h.inbox.WaitN(t, 1, wait)
	eventually(t, "the cursor saved in the shared states", func() bool { return sharedCursor() == one.CreateAt })
	h.stop(t)

	two := h.fake.Post("dm", "ann", "two, while the platform moved", "")
	h2 := onNode(h.fake)
	h2.start(t)
	eventually(t, "the post made while the platform moved", func() bool {
		for _, m := range h2.inbox.Messages() {
			if m.EventID == two.ID {
				return true
			}
		}
		return false
	})
	eventually(t, "the cursor of the second post saved", func() bool { return sharedCursor() == two.CreateAt })
	for _, dir := range dirs {
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("node directory %s holds %d files, want none (the cursor is shared)", dir, len(ents))
		}
	}
}

func readCursor(t *testing.T, dir string) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, cursorFileName))
	if err != nil {
		t.Fatal(err)
	}
	var c savedCursor
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.LastPostAt
}

// A post the inbox could not store does not move the cursor; it is
// fetched again and stored once the inbox works.
func TestCursorWaitsForTheStore(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, nil, dir, nil)
	h.connected(t)
	before := readCursor(t, dir)
	h.inbox.SetFail(adapter.ErrStopping)
	p := h.fake.Post("dm", "ann", "store me later", "")
	eventually(t, "a failed delivery and a catch-up", func() bool {
		return h.inbox.Calls() >= 2 && h.fake.Requests("GET /api/v4/channels/dm/posts") >= 1
	})
	if got := readCursor(t, dir); got != before {
		t.Fatalf("cursor moved to %d with the post not stored (was %d)", got, before)
	}
	h.inbox.SetFail(nil)
	if m := h.inbox.WaitN(t, 1, wait)[0]; m.EventID != p.ID {
		t.Fatalf("stored %q", m.Text)
	}
	eventually(t, "the cursor saved", func() bool { return readCursor(t, dir) == p.CreateAt })
}

func TestExpiredTokenIsFatal(t *testing.T) {
	h := newHarness(t, nil, "", nil)
	logs := adaptertest.Logs(adapter.Env{Log: h.a.Log})
	h.connected(t)
	h.fake.Expire()
	h.fake.Disconnect()
	st := h.st.WaitPhase(t, adapter.PhaseFatal, wait)
	if !errors.Is(st.Err, adapter.ErrUnauthorized) {
		t.Fatalf("fatal with %v, want rejected credentials", st.Err)
	}
	adaptertest.RequireEvent(t, logs, logging.MsgAdapterFatal)
}

func TestRejectedWebsocketAuthIsFatal(t *testing.T) {
	h := newHarness(t, nil, "", nil)
	// REST accepts the token; the websocket's challenge does not.
	h.a.api.token = mustSecret(t, "not-the-token")
	h.fake.Expire()
	h.start(t)
	st := h.st.WaitPhase(t, adapter.PhaseFatal, wait)
	if !errors.Is(st.Err, adapter.ErrUnauthorized) {
		t.Fatalf("fatal with %v", st.Err)
	}
}

// A blackholed websocket is detected by its unanswered ping; the next
// connection catches up on what was posted meanwhile.
func TestBlackholedWebsocketReconnects(t *testing.T) {
	h := newHarness(t, nil, "", func(c *Config) {
		c.PingInterval = time.Second
		c.RequestTimeout = time.Second
	})
	h.connected(t)
	dials := h.fake.Dials()
	h.fake.Blackhole()
	p := h.fake.Post("dm", "ann", "posted into the void", "")
	if m := h.inbox.WaitN(t, 1, wait)[0]; m.EventID != p.ID {
		t.Fatalf("stored %q", m.Text)
	}
	if h.fake.Dials() <= dials {
		t.Fatal("no new websocket")
	}
	if h.metrics.ReconnectCount() == 0 {
		t.Fatal("reconnect not counted")
	}
}

func TestRateLimitedConnectWaits(t *testing.T) {
	h := newHarness(t, nil, "", nil)
	logs := adaptertest.Logs(adapter.Env{Log: h.a.Log})
	h.fake.RateLimit(1, "", "0")
	h.start(t)
	h.st.WaitPhase(t, adapter.PhaseConnected, wait)
	var delays []time.Duration
	for _, s := range h.st.All() {
		if s.Phase == adapter.PhaseReconnecting {
			if _, ok := adapter.RetryAfter(s.Err); !ok {
				t.Errorf("reconnecting without the server's wait: %v", s.Err)
			}
			delays = append(delays, 0)
		}
	}
	if len(delays) != 1 {
		t.Fatalf("%d reconnections, want 1", len(delays))
	}
	if c := adaptertest.Clamps(logs); len(c) != 1 || c[0]["used"] != minRateWait.String() {
		t.Fatalf("clamps logged: %v", c)
	}
}

// A channel the bot can no longer read does not stop the catch-up of the
// others.
func TestCatchUpSkipsUnreadableChannel(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, nil, dir, nil)
	h.connected(t)
	h.stop(t)
	h.fake.AddChannel("gone", "O")
	h.fake.Forbid("gone")
	p := h.fake.Post("dm", "ann", "still caught up", "")
	h2 := newHarness(t, h.fake, dir, nil)
	h2.start(t)
	if m := h2.inbox.WaitN(t, 1, wait)[0]; m.EventID != p.ID {
		t.Fatalf("stored %q", m.Text)
	}
	if h2.fake.Requests("GET /api/v4/channels/gone/posts") == 0 {
		t.Fatal("the forbidden channel was not asked")
	}
}

// The first cursor is taken from the server's clock when it is behind
// herald's: a post the server stamps before herald's "now" is not lost by
// a reconnect.
func TestFirstCursorUsesTheEarlierClock(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, nil, dir, nil)
	h.a.now = func() time.Time { return time.Now().Add(time.Hour) } // herald's clock is ahead
	h.connected(t)
	if got, now := readCursor(t, dir), time.Now().UnixMilli(); got > now {
		t.Fatalf("first cursor %d is after the server's time %d", got, now)
	}
}
