// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/telegram/telegramtest"
	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

func TestReceive(t *testing.T) {
	h := newHarness(t)
	// Queued while herald was down: must not be dropped at start.
	id := h.fake.PushText(dm, ann, "hi")
	h.start(t)

	msgs := h.inbox.WaitN(t, 1, wait)
	got := msgs[0]
	want := message.Inbound{
		Platform: "tg", EventID: strconv.FormatInt(id, 10), ChatID: "555", ChatType: message.ChatDirect,
		SenderID: "555", SenderName: "Ann Lee", MessageID: got.MessageID, Text: "hi",
	}
	if got.Platform != want.Platform || got.EventID != want.EventID || got.ChatID != want.ChatID ||
		got.ChatType != want.ChatType || got.SenderID != want.SenderID || got.SenderName != want.SenderName ||
		got.Text != want.Text || got.ThreadID != "" || got.MessageID == "" || got.ReceivedAt.IsZero() {
		t.Fatalf("inbound\n got %+v\nwant %+v", *got, want)
	}
	h.st.WaitPhase(t, adapter.PhaseConnected, wait)
	h.fake.Wait(t, wait, "update confirmed", func() bool { return h.fake.Confirmed() == id+1 })

	all := h.fake.Requests("")
	if all[0].Method != "getMe" {
		t.Errorf("first call %s, want getMe", all[0].Method)
	}
	ups := h.fake.Requests("getUpdates")
	if ups[0].Params.Has("offset") {
		t.Errorf("first getUpdates sent offset %s; it must start from the oldest pending update", ups[0].Params.Get("offset"))
	}
	for _, r := range ups {
		if r.Params.Has("drop_pending_updates") || r.Params.Int("offset") < 0 {
			t.Errorf("getUpdates drops pending updates: %v", r.Params)
		}
		if r.Params.Int("timeout") != 1 || r.Params.Int("limit") != 100 || r.Params.Get("allowed_updates") != `["message","callback_query"]` {
			t.Errorf("getUpdates params %v", r.Params)
		}
	}
	if h.fake.NegativeOffsetSeen() || h.fake.Count("deleteWebhook") > 0 {
		t.Error("pending updates were thrown away")
	}
	if first := h.st.All()[0]; first.Phase != adapter.PhaseStarting {
		t.Errorf("first status %v, want starting", first.Phase)
	}
}

// failingInbox fails Deliver for one event id until allowed.
type failingInbox struct {
	*adaptertest.Inbox
	mu      sync.Mutex
	eventID string
	err     error
	calls   map[string]int
}

func (f *failingInbox) Deliver(ctx context.Context, m *message.Inbound) error {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[m.EventID]++
	fail := m.EventID == f.eventID && f.err != nil
	err := f.err
	f.mu.Unlock()
	if fail {
		return err
	}
	return f.Inbox.Deliver(ctx, m)
}

func (f *failingInbox) set(eventID string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.eventID, f.err = eventID, err
}

func (f *failingInbox) count(eventID string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[eventID]
}

func TestOffsetAdvancesOnlyAfterStore(t *testing.T) {
	h := newHarness(t)
	a := h.fake.PushText(dm, ann, "a")
	b := h.fake.PushText(dm, ann, "b")
	c := h.fake.PushText(dm, ann, "c")
	in := &failingInbox{Inbox: h.inbox}
	in.set(strconv.FormatInt(b, 10), errors.New("store: disk full"))
	if err := h.a.Start(context.Background(), in); err != nil {
		t.Fatal(err)
	}

	// b is fetched again and again; a is confirmed, b and c are not.
	testwait.For(t, "b delivered three times", func() bool { return in.count(strconv.FormatInt(b, 10)) >= 3 })
	for _, r := range h.fake.Requests("getUpdates") {
		if r.Params.Int("offset") > b {
			t.Fatalf("offset %d sent while update %d was not stored", r.Params.Int("offset"), b)
		}
	}
	if h.fake.Confirmed() != b || h.fake.Pending() != 2 {
		t.Fatalf("confirmed %d pending %d, want %d and 2", h.fake.Confirmed(), h.fake.Pending(), b)
	}
	if n := in.count(strconv.FormatInt(c, 10)); n != 0 {
		t.Fatalf("c delivered %d times before b was stored; order must hold", n)
	}
	if !h.logged(logrus.ErrorLevel, "not stored") {
		t.Error("store failure not logged at error")
	}

	in.set("", nil)
	msgs := h.inbox.WaitN(t, 3, wait)
	for i, want := range []string{"a", "b", "c"} {
		if msgs[i].Text != want {
			t.Fatalf("message %d is %q, want %q", i, msgs[i].Text, want)
		}
	}
	h.fake.Wait(t, wait, "all confirmed", func() bool { return h.fake.Confirmed() == c+1 && h.fake.Pending() == 0 })
	if n := in.count(strconv.FormatInt(a, 10)); n != 1 {
		t.Errorf("a delivered %d times, want 1", n)
	}
}

func TestSkippedUpdatesAdvanceOffset(t *testing.T) {
	// edited_message asked for, so that Telegram (and the fake) deliver it.
	h := newHarness(t, func(c *Config) { c.AllowedUpdates = []string{"message", "edited_message", "callback_query"} })
	group := telegramtest.Chat{ID: -100, Type: "supergroup"}
	bot := telegramtest.User{ID: 99, IsBot: true, FirstName: "other"}
	h.fake.Push(telegramtest.Update{EditedMessage: &telegramtest.Message{From: &ann, Chat: dm, Text: "edited"}})
	h.fake.Push(telegramtest.Update{CallbackQuery: []byte(`{"id":"1","from":{"id":555,"is_bot":false,"first_name":"Ann"}}`)})
	h.fake.Push(telegramtest.Update{Message: &telegramtest.Message{From: &ann, Chat: dm}}) // a service message: nothing herald reads
	photo := h.fake.Push(telegramtest.Update{Message: &telegramtest.Message{From: &ann, Chat: dm, Photo: []telegramtest.PhotoSz{{FileID: "f", FileUniqueID: "u", Width: 1, Height: 1}}}})
	h.fake.PushText(dm, bot, "I am a bot")
	h.fake.PushText(group, ann, "chatter not for the bot")
	if _, err := h.fake.PushRaw(`{"update_id":2000,"message":"not an object"}`); err != nil {
		t.Fatal(err)
	}
	invalid := h.fake.PushText(dm, ann, "refused by the store as invalid")
	last := h.fake.PushText(dm, ann, "hello")

	in := &failingInbox{Inbox: h.inbox}
	in.set(strconv.FormatInt(invalid, 10), fmt.Errorf("store: %w: text too large", message.ErrInvalid))
	if err := h.a.Start(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	msgs := h.inbox.WaitN(t, 2, wait)
	if len(msgs) != 2 || msgs[0].EventID != strconv.FormatInt(photo, 10) || len(msgs[0].Attachments) != 1 || msgs[0].Attachments[0].Ref != "f" || msgs[1].Text != "hello" {
		t.Fatalf("stored %+v, want the photo-only message, then hello", msgs)
	}
	h.fake.Wait(t, wait, "everything confirmed", func() bool { return h.fake.Confirmed() == last+1 && h.fake.Pending() == 0 })
	for reason, want := range map[string]int{
		reasonUnsupported: 3, reasonFromBot: 1, reasonNotAddressed: 1, reasonMalformed: 1, reasonInvalid: 1,
	} {
		if got := h.metrics.Rejections(reason); got != want {
			t.Errorf("Rejected(%q) = %d, want %d", reason, got, want)
		}
	}
}

func TestRedeliveryAfterRestartIsDeduplicated(t *testing.T) {
	h := newHarness(t)
	id := h.fake.PushText(dm, ann, "restart me")
	// Once the update is stored, hold the next poll (the one that would
	// confirm it) so that the adapter stops before Telegram hears of it.
	in := adapter.InboxFunc(func(ctx context.Context, m *message.Inbound) error {
		err := h.inbox.Deliver(ctx, m)
		h.fake.Always("getUpdates", telegramtest.Blackhole())
		return err
	})
	if err := h.a.Start(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	h.inbox.WaitN(t, 1, wait)
	h.fake.Wait(t, wait, "confirming poll held", func() bool { return h.fake.Blackholed() == 1 })
	adaptertest.StopWithin(t, h.a) // no time left: no confirming call
	h.fake.Clear("getUpdates")
	if h.fake.Confirmed() > id || h.fake.Pending() != 1 {
		t.Fatalf("confirmed %d pending %d: the update was confirmed although the adapter stopped first", h.fake.Confirmed(), h.fake.Pending())
	}

	// The next instance gets the same update again; the store keeps one.
	b := h.build(t)
	if err := b.Start(context.Background(), h.inbox); err != nil {
		t.Fatal(err)
	}
	h.fake.Wait(t, wait, "redelivered update confirmed", func() bool { return h.fake.Confirmed() == id+1 })
	if h.inbox.Calls() != 2 {
		t.Fatalf("Deliver called %d times, want 2 (once per instance)", h.inbox.Calls())
	}
	if msgs := h.inbox.Messages(); len(msgs) != 1 || msgs[0].EventID != strconv.FormatInt(id, 10) {
		t.Fatalf("stored %+v, want the one update once", msgs)
	}
}

func TestStopConfirmsStoredUpdates(t *testing.T) {
	h := newHarness(t)
	id := h.fake.PushText(dm, ann, "confirm me")
	in := adapter.InboxFunc(func(ctx context.Context, m *message.Inbound) error {
		err := h.inbox.Deliver(ctx, m)
		h.fake.Always("getUpdates", telegramtest.Blackhole())
		return err
	})
	if err := h.a.Start(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	h.fake.Wait(t, wait, "confirming poll held", func() bool { return h.fake.Blackholed() == 1 })
	h.fake.Clear("getUpdates")
	adaptertest.StopAfter(t, h.a, time.Second)
	if h.fake.Confirmed() != id+1 || h.fake.Pending() != 0 {
		t.Fatalf("confirmed %d pending %d, want %d and 0", h.fake.Confirmed(), h.fake.Pending(), id+1)
	}
	last := h.fake.Requests("getUpdates")
	if p := last[len(last)-1].Params; p.Int("timeout") != 0 || p.Int("limit") != 1 {
		t.Errorf("confirming call %v, want timeout 0 and limit 1", p)
	}
}

func TestGetUpdates429WaitsRetryAfter(t *testing.T) {
	h := newHarness(t)
	h.fake.Script("getUpdates", telegramtest.RetryAfter(1))
	h.start(t)
	_, st := h.waitStatus(t, 0, "reconnecting after 429", phase(adapter.PhaseReconnecting))
	h.fake.Wait(t, wait, "second getUpdates", func() bool { return h.fake.Count("getUpdates") >= 2 })
	reqs := h.fake.Requests("getUpdates")
	if !strings.Contains(st.Err.Error(), "429") || st.RetryAt.Sub(reqs[0].At) < time.Second {
		t.Fatalf("status %+v, want a 429 error and RetryAt 1s after the 429 (at %v)", st, reqs[0].At)
	}
	if gap := reqs[1].At.Sub(reqs[0].At); gap < time.Second {
		t.Fatalf("retried %v after a 429 with retry_after 1", gap)
	}
	id := h.fake.PushText(dm, ann, "after 429")
	if msgs := h.inbox.WaitN(t, 1, wait); msgs[0].EventID != strconv.FormatInt(id, 10) {
		t.Fatalf("got %+v", msgs[0])
	}
	h.st.WaitPhase(t, adapter.PhaseConnected, wait)
}

// TestGetUpdatesHostileRetryAfter: a retry_after of 30 days would stall
// intake for 720 h. It is clamped to adapter.MaxRetryAfter, and the clamp is
// logged once with the value given and the value used.
func TestGetUpdatesHostileRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply telegramtest.Reply
		given any
	}{
		{"30 days", telegramtest.RetryAfter(30 * 24 * 3600), float64(30 * 24 * 3600)},
		{"1e30 s", hugeRetryAfter, 1e30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.fake.Script("getUpdates", tc.reply)
			h.start(t)
			_, st := h.waitStatus(t, 0, "reconnecting after 429", phase(adapter.PhaseReconnecting))
			at := h.fake.Requests("getUpdates")[0].At
			if wait := st.RetryAt.Sub(at); wait < adapter.MaxRetryAfter-time.Minute || wait > adapter.MaxRetryAfter+time.Minute {
				t.Errorf("retry scheduled %v after the 429, want %v", wait, adapter.MaxRetryAfter)
			}
			clamps := adaptertest.Clamps(h.logs)
			if len(clamps) != 1 || clamps[0]["given"] != tc.given || clamps[0]["used"] != adapter.MaxRetryAfter.String() {
				t.Errorf("clamp log entries %v, want one with given %v and used %v", clamps, tc.given, adapter.MaxRetryAfter)
			}
		})
	}
}

func TestConflictAlarmAndBackoff(t *testing.T) {
	h := newHarness(t)
	h.fake.Always("getUpdates", telegramtest.Conflict())
	started := time.Now()
	h.start(t)

	_, first := h.waitStatus(t, 0, "first 409", phase(adapter.PhaseReconnecting))
	if first.Alarm != "" || !strings.Contains(first.Err.Error(), "409") {
		t.Fatalf("first 409 within conflict_window: %+v, want no alarm yet", first)
	}
	_, st := h.waitStatus(t, 0, "alarm", func(s adapter.Status) bool { return s.Alarm != "" })
	if since := time.Since(started); since < testConflictWindow {
		t.Fatalf("alarm raised %v after start, inside conflict_window %v", since, testConflictWindow)
	}
	if st.Alarm != ConflictAlarm || st.Phase != adapter.PhaseReconnecting || st.RetryAt.IsZero() {
		t.Fatalf("status %+v", st)
	}
	testwait.For(t, "409 logged at error", func() bool { return h.logged(logrus.ErrorLevel, "409 Conflict") })

	// No hot loop: every retry waits its backoff, whose floor is half of
	// adaptertest.FastBackoff.Min, so consecutive polls arrive at least that far apart
	// (a slow machine only spreads them further); a loop without backoff
	// would send them back to back.
	n0 := h.fake.Count("getUpdates")
	testwait.For(t, "5 more polls during the conflict", func() bool { return h.fake.Count("getUpdates") >= n0+5 })
	polls := h.fake.Requests("getUpdates")[n0-1:]
	for i := 1; i < len(polls); i++ {
		if gap := polls[i].At.Sub(polls[i-1].At); gap < adaptertest.FastBackoff.Min/2 {
			t.Fatalf("getUpdates %v after the previous one during a conflict, below the backoff floor %v: hot loop", gap, adaptertest.FastBackoff.Min/2)
		}
	}
	for _, s := range h.st.All() {
		if s.Phase == adapter.PhaseFatal {
			t.Fatal("409 must not be fatal: the other poller may go away")
		}
	}

	// The other poller goes away: connected again, and the alarm clears
	// once no 409 was seen for conflict_window.
	h.fake.Clear("getUpdates")
	n := len(h.st.All())
	h.waitStatus(t, n, "connected without alarm", func(s adapter.Status) bool {
		return s.Phase == adapter.PhaseConnected && s.Alarm == ""
	})
	if h.metrics.ReconnectCount() < 3 {
		t.Errorf("Reconnect counted %d times", h.metrics.ReconnectCount())
	}
}

func TestWebhookConflictRaisesAlarm(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.ConflictWindow = 0 })
	h.fake.Always("getUpdates", telegramtest.WebhookConflict())
	h.start(t)
	_, st := h.waitStatus(t, 0, "alarm", func(s adapter.Status) bool { return s.Alarm == ConflictAlarm })
	if !strings.Contains(st.Err.Error(), "webhook") {
		t.Errorf("Err %v should carry Telegram's description", st.Err)
	}
}

func TestBadTokenIsFatal(t *testing.T) {
	tests := []struct {
		name   string
		method string
		reply  telegramtest.Reply
		calls  int // requests in total before giving up
	}{
		{"getMe 401", "getMe", telegramtest.Unauthorized(), 1},
		{"getMe 404", "getMe", telegramtest.NotFound(), 1},
		{"getUpdates 401", "getUpdates", telegramtest.Unauthorized(), 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.fake.Script(tc.method, tc.reply)
			h.start(t)
			st := h.st.WaitPhase(t, adapter.PhaseFatal, wait)
			if !errors.Is(st.Err, adapter.ErrUnauthorized) {
				t.Fatalf("fatal error %v does not wrap ErrUnauthorized", st.Err)
			}
			adaptertest.RequireEvent(t, h.logs, logging.MsgAdapterFatal)
			testwait.For(t, "intake ended", h.loopDone)
			if n := h.fake.Count(""); n != tc.calls {
				t.Fatalf("%d requests, want %d: retried after the token was rejected", n, tc.calls)
			}
			if h.metrics.ReconnectCount() != 0 {
				t.Errorf("reconnects counted for a fatal error")
			}
		})
	}
}

func TestReconnectAfterAbruptClose(t *testing.T) {
	h := newHarness(t)
	h.fake.Script("getMe", telegramtest.Abort())
	h.fake.Script("getUpdates", telegramtest.ServerError(), telegramtest.Abort())
	h.fake.PushText(dm, ann, "one")
	h.start(t)
	h.inbox.WaitN(t, 1, wait)
	if got := h.metrics.ReconnectCount(); got != 3 {
		t.Errorf("Reconnect counted %d times, want 3", got)
	}
	var reconnecting []adapter.Status
	for _, s := range h.st.All() {
		if s.Phase == adapter.PhaseReconnecting {
			reconnecting = append(reconnecting, s)
		}
	}
	if len(reconnecting) != 3 || reconnecting[0].Err == nil || reconnecting[0].RetryAt.IsZero() {
		t.Fatalf("reconnecting reports %+v", reconnecting)
	}
	h.st.WaitPhase(t, adapter.PhaseConnected, wait)

	// The whole server goes away mid-poll and comes back.
	h.fake.Wait(t, wait, "poll held", func() bool { return h.fake.Held() == 1 })
	n := len(h.st.All())
	h.fake.Refuse()
	h.waitStatus(t, n, "reconnecting", phase(adapter.PhaseReconnecting))
	if err := h.fake.Accept(); err != nil {
		t.Fatal(err)
	}
	h.fake.PushText(dm, ann, "two")
	h.inbox.WaitN(t, 2, wait)
	h.waitStatus(t, n, "connected again", phase(adapter.PhaseConnected))
}

func TestPollTimeoutReconnects(t *testing.T) {
	// A poll that never answers is cut at poll_timeout + request_timeout
	// and retried; the adapter keeps running (a timeout is an ordinary
	// network error, never a reason for the process to die).
	h := newHarness(t)
	h.fake.Script("getUpdates", telegramtest.Blackhole())
	h.start(t)
	_, st := h.waitStatus(t, 0, "reconnecting", phase(adapter.PhaseReconnecting))
	if !errors.Is(st.Err, context.DeadlineExceeded) {
		t.Errorf("err %v, want a deadline", st.Err)
	}
	h.fake.PushText(dm, ann, "still alive")
	h.inbox.WaitN(t, 1, wait)
}

func TestStopIsBounded(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, h *harness)
	}{
		{"not started", func(t *testing.T, h *harness) {}},
		{"mid long-poll", func(t *testing.T, h *harness) {
			h.start(t)
			h.fake.Wait(t, wait, "poll held", func() bool { return h.fake.Held() == 1 })
		}},
		{"mid getMe against a blackhole", func(t *testing.T, h *harness) {
			h.fake.Script("getMe", telegramtest.Blackhole())
			h.start(t)
			h.fake.Wait(t, wait, "getMe blackholed", func() bool { return h.fake.Blackholed() == 1 })
		}},
		{"mid backoff", func(t *testing.T, h *harness) {
			h.a.minBackoff, h.a.maxBackoff = time.Hour, time.Hour
			h.fake.Script("getMe", telegramtest.ServerError())
			h.start(t)
			h.st.WaitPhase(t, adapter.PhaseReconnecting, wait)
		}},
		{"mid 429 wait", func(t *testing.T, h *harness) {
			h.fake.Script("getUpdates", telegramtest.RetryAfter(3600))
			h.start(t)
			h.st.WaitPhase(t, adapter.PhaseReconnecting, wait)
		}},
		{"while Deliver blocks", func(t *testing.T, h *harness) {
			t.Cleanup(h.inbox.Block())
			h.fake.PushText(dm, ann, "slow store")
			h.start(t)
			testwait.For(t, "Deliver called", func() bool { return h.inbox.Calls() == 1 })
		}},
		{"fatal", func(t *testing.T, h *harness) {
			h.fake.Script("getMe", telegramtest.Unauthorized())
			h.start(t)
			h.st.WaitPhase(t, adapter.PhaseFatal, wait)
		}},
		{"mid sendMessage", func(t *testing.T, h *harness) {
			h.start(t)
			h.fake.Script("sendMessage", telegramtest.Blackhole())
			errc := make(chan error, 1)
			go func() {
				_, err := h.a.Send(context.Background(), &message.Outbound{ChatID: "555", Text: "x"})
				errc <- err
			}()
			h.fake.Wait(t, wait, "send blackholed", func() bool { return h.fake.Blackholed() == 1 })
			t.Cleanup(func() {
				if err := <-errc; !errors.Is(err, adapter.ErrAmbiguous) {
					t.Errorf("Send cut by Stop: %v, want ErrAmbiguous", err)
				}
			})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			tc.setup(t, h)
			adaptertest.StopWithin(t, h.a)
			if !h.loopDone() {
				t.Fatal("intake goroutine still running after Stop")
			}
			if last := h.st.Last(); last.Phase != adapter.PhaseStopped {
				t.Fatalf("last status %v, want stopped", last.Phase)
			}
			_, err := h.a.Send(context.Background(), &message.Outbound{ChatID: "555", Text: "late"})
			if !errors.Is(err, adapter.ErrTemporary) {
				t.Fatalf("Send after Stop: %v", err)
			}
		})
	}
}

func TestStopGraceful(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	h.fake.Wait(t, wait, "poll held", func() bool { return h.fake.Held() == 1 })
	adaptertest.StopAfter(t, h.a, 2*time.Second)
	if err := h.a.Stop(context.Background()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if err := h.a.Start(context.Background(), h.inbox); err == nil {
		t.Error("Start after Stop succeeded")
	}
}

func TestUnreadableBatchBacksOff(t *testing.T) {
	// An entry without a usable update_id cannot be confirmed; fetching it
	// again at once would loop, so it goes through the backoff.
	h := newHarness(t)
	if _, err := h.fake.PushRaw(`{"update_id":0,"message":{"text":"?"}}`); err != nil {
		t.Fatal(err)
	}
	h.start(t)
	testwait.For(t, "error logged", func() bool { return h.logged(logrus.ErrorLevel, "only unreadable updates") })
	testwait.For(t, "fetched again", func() bool { return h.metrics.Rejections(reasonMalformed) >= 2 })
	reqs := h.fake.Requests("getUpdates")
	if gap := reqs[1].At.Sub(reqs[0].At); gap < adaptertest.FastBackoff.Min/2 {
		t.Fatalf("fetched again after %v, want a backoff of at least %v", gap, adaptertest.FastBackoff.Min/2)
	}
}

// TestConnectedWithoutWaitingForAPoll: on an idle bot a long poll answers
// only after poll_timeout. The status turns connected when getMe succeeds,
// not a whole poll_timeout later.
func TestConnectedWithoutWaitingForAPoll(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.PollTimeout = 10 * time.Minute })
	h.start(t)
	st := h.st.WaitPhase(t, adapter.PhaseConnected, wait)
	if st.Err != nil {
		t.Errorf("connected with error %v", st.Err)
	}
	h.fake.Wait(t, wait, "long poll held", func() bool { return h.fake.Held() == 1 })
}

// TestConnectedAtOnceAfterOutage: after a failed call the next getUpdates
// is a short poll, so the status turns connected (without the old error)
// as soon as Telegram answers again, not when a long poll ends or a message
// arrives; then long polling resumes.
func TestConnectedAtOnceAfterOutage(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.PollTimeout = 10 * time.Minute })
	h.start(t)
	h.st.WaitPhase(t, adapter.PhaseConnected, wait)
	h.fake.Wait(t, wait, "long poll held", func() bool { return h.fake.Held() == 1 })
	h.fake.Refuse()
	n, _ := h.waitStatus(t, 0, "reconnecting", phase(adapter.PhaseReconnecting))
	polls := h.fake.Count("getUpdates")
	if err := h.fake.Accept(); err != nil {
		t.Fatal(err)
	}
	_, st := h.waitStatus(t, n+1, "connected again", phase(adapter.PhaseConnected))
	if st.Err != nil || !st.RetryAt.IsZero() {
		t.Errorf("connected report %+v carries the outage's error or retry time", st)
	}
	h.fake.Wait(t, wait, "long poll held again", func() bool { return h.fake.Held() == 1 })
	reqs := h.fake.Requests("getUpdates")[polls:]
	if len(reqs) < 2 || reqs[0].Params.Int("timeout") != 0 || reqs[len(reqs)-1].Params.Int("timeout") != 600 {
		var timeouts []int64
		for _, r := range reqs {
			timeouts = append(timeouts, r.Params.Int("timeout"))
		}
		t.Errorf("getUpdates timeouts after the outage %v, want a short poll (0) then long polls (600)", timeouts)
	}
}
