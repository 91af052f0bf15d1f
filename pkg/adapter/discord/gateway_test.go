// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/discord/discordtest"
	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/message"
)

const guild = "400000000000000001"

func TestReceive(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	h.connected(t)

	if got := srv.Identifies(); len(got) != 1 || got[0].Intents != DefaultIntents || got[0].Token != srv.Token {
		t.Fatalf("identifies = %+v, want one with intents %d and the token", got, DefaultIntents)
	}
	bot := srv.BotID
	srv.Push("THREAD_CREATE", map[string]any{"id": "500000000000000009", "type": 11, "guild_id": guild, "parent_id": "200000000000000002"})
	pushes := []discordtest.Msg{
		{ID: "1", Content: "hello in DM", AuthorID: "31", AuthorName: "ann"},
		{ID: "2", GuildID: guild, Content: "not for the bot"},
		{ID: "3", GuildID: guild, Content: "<@" + bot + "> what time is it?", Mentions: []string{bot}, ChannelID: "200000000000000002"},
		{ID: "4", GuildID: guild, Content: "legacy <@!" + bot + ">", Mentions: []string{bot}},
		{ID: "5", Content: "I am a bot", Bot: true},
		{ID: "6", GuildID: guild, Content: "answering you", ReplyToAuthorID: bot},
		{ID: "7", GuildID: guild, Content: "reply to someone else", ReplyToAuthorID: "999"},
		{ID: "8", Content: "via webhook", WebhookID: "77"},
		{ID: "9", Content: "pinned", Type: 6},
		{ID: "10", GuildID: guild, Content: "<@" + bot + ">", Mentions: []string{bot}},
		{ID: "11", GuildID: guild, ChannelID: "500000000000000009", Content: "<@" + bot + "> in a known thread", Mentions: []string{bot}},
		{ID: "12", GuildID: guild, ChannelID: "500000000000000010", Content: "<@" + bot + "> in another thread", Mentions: []string{bot}, InThread: true},
		{ID: "13", Content: "last"},
	}
	for _, m := range pushes {
		srv.PushMessage(m)
	}
	msgs := h.inbox.WaitN(t, 7, wait)
	var ids []string
	byID := map[string]*message.Inbound{}
	for _, m := range msgs {
		ids = append(ids, m.EventID)
		byID[m.EventID] = m
	}
	if got, want := strings.Join(ids, ","), "1,3,4,6,11,12,13"; got != want {
		t.Fatalf("stored events %s, want %s", got, want)
	}
	dm := byID["1"]
	if dm.Platform != "discord" || dm.ChatID != "200000000000000001" || dm.ChatType != message.ChatDirect ||
		dm.SenderID != "31" || dm.SenderName != "ann" || dm.MessageID != "1" || dm.Text != "hello in DM" || dm.ThreadID != "" {
		t.Errorf("DM inbound = %+v", dm)
	}
	g := byID["3"]
	if g.ChatType != message.ChatGroup || g.ChatID != "200000000000000002" || g.Text != "what time is it?" || g.ThreadID != "" {
		t.Errorf("guild inbound = %+v", g)
	}
	if got := byID["4"].Text; got != "legacy" {
		t.Errorf("legacy mention stripped to %q, want %q", got, "legacy")
	}
	if got := byID["11"].ThreadID; got != "500000000000000009" {
		t.Errorf("message in known thread: ThreadID %q", got)
	}
	if got := byID["12"]; got.ThreadID != "500000000000000010" || got.ChatID != "500000000000000010" {
		t.Errorf("message with position: ChatID %q ThreadID %q", got.ChatID, got.ThreadID)
	}
	// Every event, skipped or stored, was handled: the sequence number
	// sent with heartbeats and Resume has reached the server's.
	srv.Await(t, "sequence caught up", wait, func() bool { return h.a.seq.Load() == srv.Seq() })
}

func TestReceiveWithoutRequireMention(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv, func(c *Config) { c.RequireMention = false })
	h.connected(t)
	srv.PushMessage(discordtest.Msg{ID: "1", GuildID: guild, Content: "no mention needed"})
	msgs := h.inbox.WaitN(t, 1, wait)
	if msgs[0].Text != "no mention needed" || msgs[0].ChatType != message.ChatGroup {
		t.Fatalf("got %+v", msgs[0])
	}
}

func TestHeartbeat(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{HeartbeatInterval: 30 * time.Millisecond})
	h := newHarness(t, srv)
	h.connected(t)
	_, seq := srv.PushMessage(discordtest.Msg{Content: "hi"})
	h.inbox.WaitN(t, 1, wait)
	srv.Await(t, "heartbeat carrying the last sequence number", wait, func() bool {
		for _, hb := range srv.Heartbeats() {
			if hb.Seq == seq {
				return true
			}
		}
		return false
	})
	if n := srv.Connections(); n != 1 {
		t.Fatalf("acknowledged heartbeats caused %d connections, want 1", n)
	}
}

func TestHeartbeatRequestedByServer(t *testing.T) {
	leakCheck(t)
	// A long interval and a late first beat: any heartbeat seen is the
	// answer to op 1.
	srv := discordtest.New(t, discordtest.Options{HeartbeatInterval: time.Minute})
	h := newHarness(t, srv)
	h.a.tun.jitter = func() float64 { return 0.99 }
	h.connected(t)
	if n := len(srv.Heartbeats()); n != 0 {
		t.Fatalf("%d heartbeats before op 1", n)
	}
	if err := srv.RequestHeartbeat(); err != nil {
		t.Fatal(err)
	}
	srv.Await(t, "heartbeat answering op 1", wait, func() bool { return len(srv.Heartbeats()) == 1 })
	if hb := srv.Heartbeats()[0]; hb.Seq != 1 {
		t.Errorf("heartbeat d = %d, want 1 (READY)", hb.Seq)
	}
}

// TestResumeAfterDrop: events pushed while the TCP connection is gone are
// replayed on resume; nothing is lost and nothing is delivered twice.
func TestResumeAfterDrop(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	h.connected(t)
	for i := range 3 {
		srv.PushMessage(discordtest.Msg{Content: fmt.Sprint("before ", i)})
	}
	h.inbox.WaitN(t, 3, wait)
	srv.Await(t, "seq", wait, func() bool { return h.a.seq.Load() == 4 })
	srv.HoldResume(true) // keep the adapter away until the events are queued
	if err := srv.Drop(); err != nil {
		t.Fatal(err)
	}
	srv.Await(t, "resume attempt", wait, func() bool { return len(srv.Resumes()) == 1 })
	for i := range 2 {
		srv.PushMessage(discordtest.Msg{Content: fmt.Sprint("while away ", i)})
	}
	srv.HoldResume(false)
	// The held connection never resumes; the next one does.
	if err := srv.Drop(); err != nil {
		t.Fatal(err)
	}
	msgs := h.inbox.WaitN(t, 5, wait)
	if calls := h.inbox.Calls(); calls != 5 {
		t.Errorf("Deliver called %d times for 5 events", calls)
	}
	for i, want := range []string{"before 0", "before 1", "before 2", "while away 0", "while away 1"} {
		if msgs[i].Text != want {
			t.Errorf("message %d = %q, want %q", i, msgs[i].Text, want)
		}
	}
	res := srv.Resumes()
	for _, r := range res {
		if r.SessionID != "fake-session-1" || r.Seq != 4 || r.Token != srv.Token {
			t.Errorf("resume %+v, want session fake-session-1 seq 4", r)
		}
	}
	if n := len(srv.Identifies()); n != 1 {
		t.Errorf("%d identifies, want 1 (resumed, not re-identified)", n)
	}
	if h.metrics.ReconnectCount() < 2 {
		t.Errorf("reconnects counted: %d, want ≥ 2", h.metrics.ReconnectCount())
	}
	srv.Await(t, "connected after RESUMED", wait, func() bool { return h.status.Last().Phase == adapter.PhaseConnected })
}

func TestZombieConnectionResumes(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{HeartbeatInterval: 20 * time.Millisecond})
	h := newHarness(t, srv)
	h.connected(t)
	if err := srv.Silence(); err != nil {
		t.Fatal(err)
	}
	srv.Await(t, "resume after zombie", wait, func() bool { return len(srv.Resumes()) == 1 })
	srv.Await(t, "client close recorded", wait, func() bool { return len(srv.ClientCloses()) > 0 })
	if codes := srv.ClientCloses(); len(codes) != 1 || codes[0] == 1000 || codes[0] == 1001 {
		t.Fatalf("client close codes %v, want one code other than 1000/1001", codes)
	}
	var sawZombie bool
	for _, st := range h.status.All() {
		if st.Phase == adapter.PhaseReconnecting && errors.Is(st.Err, errZombie) {
			sawZombie = true
		}
	}
	if !sawZombie {
		t.Errorf("no reconnecting status with the zombie error")
	}
	srv.PushMessage(discordtest.Msg{Content: "after resume"})
	h.inbox.WaitN(t, 1, wait)
}

func TestReconnectOpcode(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	h.connected(t)
	srv.PushMessage(discordtest.Msg{Content: "one"})
	h.inbox.WaitN(t, 1, wait)
	if err := srv.Reconnect(); err != nil {
		t.Fatal(err)
	}
	srv.Await(t, "resume after op 7", wait, func() bool { return len(srv.Resumes()) == 1 })
	if r := srv.Resumes()[0]; r.Seq != 2 {
		t.Errorf("resume seq %d, want 2", r.Seq)
	}
	srv.Await(t, "client close recorded", wait, func() bool { return len(srv.ClientCloses()) > 0 })
	if codes := srv.ClientCloses(); len(codes) != 1 || codes[0] != int(closeReconnect) {
		t.Errorf("client closed with %v, want [%d]", codes, closeReconnect)
	}
	srv.PushMessage(discordtest.Msg{Content: "two"})
	h.inbox.WaitN(t, 2, wait)
	if n := len(srv.Identifies()); n != 1 {
		t.Errorf("%d identifies, want 1", n)
	}
}

func TestInvalidSession(t *testing.T) {
	for _, resumable := range []bool{true, false} {
		t.Run(fmt.Sprint("resumable=", resumable), func(t *testing.T) {
			leakCheck(t)
			srv := discordtest.New(t, discordtest.Options{})
			h := newHarness(t, srv)
			h.connected(t)
			if err := srv.InvalidSession(resumable); err != nil {
				t.Fatal(err)
			}
			srv.Await(t, "second session", wait, func() bool { return countPhase(h.status, adapter.PhaseConnected) == 2 })
			ids, res := len(srv.Identifies()), len(srv.Resumes())
			if resumable && (ids != 1 || res != 1) {
				t.Errorf("op 9 true: %d identifies, %d resumes; want 1, 1", ids, res)
			}
			if !resumable && (ids != 2 || res != 0) {
				t.Errorf("op 9 false: %d identifies, %d resumes; want 2, 0", ids, res)
			}
			srv.PushMessage(discordtest.Msg{Content: "still listening"})
			h.inbox.WaitN(t, 1, wait)
		})
	}
}

func TestRejectedResumeIdentifies(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	h.connected(t)
	srv.RejectResume(true)
	if err := srv.Drop(); err != nil {
		t.Fatal(err)
	}
	srv.Await(t, "new session", wait, func() bool { return len(srv.Identifies()) == 2 })
	if n := len(srv.Resumes()); n != 1 {
		t.Errorf("%d resumes, want 1 (answered op 9 false)", n)
	}
	srv.Await(t, "connected", wait, func() bool { return countPhase(h.status, adapter.PhaseConnected) == 2 })
}

func TestFatalCloseCodes(t *testing.T) {
	for _, tc := range []struct {
		code int
		is   error
		text string
	}{
		{4004, adapter.ErrUnauthorized, "authentication failed"},
		{4010, adapter.ErrPermanent, "invalid shard"},
		{4011, adapter.ErrPermanent, "sharding required"},
		{4012, adapter.ErrPermanent, "invalid API version"},
		{4013, adapter.ErrPermanent, "invalid intents"},
		{4014, adapter.ErrPermanent, "enable the MESSAGE_CONTENT privileged intent"},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			leakCheck(t)
			srv := discordtest.New(t, discordtest.Options{})
			srv.CloseOnIdentify(tc.code)
			h := newHarness(t, srv)
			h.start(t)
			st := h.status.WaitPhase(t, adapter.PhaseFatal, wait)
			var ce *CloseError
			if !errors.As(st.Err, &ce) || ce.Code != tc.code || !errors.Is(st.Err, tc.is) || !strings.Contains(st.Err.Error(), tc.text) {
				t.Fatalf("fatal status error %v, want close %d (%v) mentioning %q", st.Err, tc.code, tc.is, tc.text)
			}
			adaptertest.RequireEvent(t, h.logs, logging.MsgAdapterFatal)
			srv.Await(t, "gateway goroutine ended", wait, h.runEnded)
			if n := srv.Connections(); n != 1 {
				t.Errorf("%d connections after fatal close %d, want 1 (no retry)", n, tc.code)
			}
			if n := h.metrics.ReconnectCount(); n != 0 {
				t.Errorf("%d reconnects counted", n)
			}
		})
	}
}

func TestReconnectableCloseCodes(t *testing.T) {
	for _, tc := range []struct {
		code   int
		resume bool
	}{
		{4000, true}, {4001, false}, {4002, true}, {4003, false}, {4005, false},
		{4007, false}, {4008, true}, {4009, false}, {1001, true}, {1011, true},
	} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			leakCheck(t)
			srv := discordtest.New(t, discordtest.Options{})
			h := newHarness(t, srv)
			h.connected(t)
			srv.PushMessage(discordtest.Msg{Content: "before the close"})
			h.inbox.WaitN(t, 1, wait)
			if err := srv.CloseLive(tc.code); err != nil {
				t.Fatal(err)
			}
			srv.Await(t, "reconnected", wait, func() bool { return countPhase(h.status, adapter.PhaseConnected) == 2 })
			ids, res := len(srv.Identifies()), len(srv.Resumes())
			if tc.resume && (ids != 1 || res != 1 || srv.Resumes()[0].Seq != 2) {
				t.Errorf("close %d: %d identifies, resumes %+v; want one resume with seq 2", tc.code, ids, srv.Resumes())
			}
			if !tc.resume && (ids != 2 || res != 0) {
				t.Errorf("close %d: %d identifies, %d resumes; want a new Identify", tc.code, ids, res)
			}
			var ce *CloseError
			for _, st := range h.status.All() {
				if st.Phase == adapter.PhaseReconnecting && errors.As(st.Err, &ce) && ce.Code == tc.code {
					return
				}
			}
			t.Errorf("no reconnecting status carrying close code %d: %v", tc.code, h.status.All())
		})
	}
}

// TestDeliverFailureResumes: an event the inbox could not store is not
// counted as handled; the adapter closes resumably and Discord replays it.
func TestDeliverFailureResumes(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	h.connected(t)
	srv.PushMessage(discordtest.Msg{Content: "stored"})
	h.inbox.WaitN(t, 1, wait)

	storeDown := errors.New("disk full")
	h.inbox.SetFail(storeDown)
	id, _ := srv.PushMessage(discordtest.Msg{Content: "needs a replay"})
	srv.Await(t, "resume after failed delivery", wait, func() bool { return len(srv.Resumes()) >= 1 })
	srv.Await(t, "client close recorded", wait, func() bool { return len(srv.ClientCloses()) > 0 })
	if codes := srv.ClientCloses(); len(codes) == 0 || codes[0] != int(closeReconnect) {
		t.Fatalf("client close codes %v, want %d first", codes, closeReconnect)
	}
	for _, r := range srv.Resumes() {
		if r.Seq != 2 {
			t.Fatalf("resume seq %d, want 2 (the last stored event, not the failed one)", r.Seq)
		}
	}
	var sawErr bool
	for _, st := range h.status.All() {
		if st.Phase == adapter.PhaseReconnecting && errors.Is(st.Err, storeDown) {
			sawErr = true
		}
	}
	if !sawErr {
		t.Error("the store error is not in any status")
	}

	h.inbox.SetFail(nil)
	msgs := h.inbox.WaitN(t, 2, wait)
	if msgs[1].EventID != id || msgs[1].Text != "needs a replay" {
		t.Fatalf("replayed message %+v, want %s", msgs[1], id)
	}
	if n := len(srv.Identifies()); n != 1 {
		t.Errorf("%d identifies, want 1", n)
	}
	srv.Await(t, "sequence caught up", wait, func() bool { return h.a.seq.Load() == srv.Seq() })
}

// TestInvalidMessageIsSkipped: an event the inbox refuses for good
// (message.ErrInvalid) must not block the session.
func TestInvalidMessageIsSkipped(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	h.connected(t)
	srv.Push("MESSAGE_CREATE", map[string]any{"id": "1", "type": 0, "channel_id": "", "content": "no channel", "author": map[string]any{"id": "5"}})
	srv.Push("MESSAGE_CREATE", map[string]any{"id": 2, "content": "id is a number"})
	srv.PushMessage(discordtest.Msg{ID: "3", Content: "fine"})
	msgs := h.inbox.WaitN(t, 1, wait)
	if msgs[0].EventID != "3" {
		t.Fatalf("stored %+v", msgs[0])
	}
	if got := h.metrics.Rejections("malformed"); got != 2 {
		t.Errorf("malformed rejections %d, want 2", got)
	}
	if n := srv.Connections(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

func TestBadTokenIsFatal(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv, func(c *Config) { c.Token = tokenFile(t, "wrong") })
	h.start(t)
	st := h.status.WaitPhase(t, adapter.PhaseFatal, wait)
	if !errors.Is(st.Err, adapter.ErrUnauthorized) {
		t.Fatalf("fatal error %v, want ErrUnauthorized", st.Err)
	}
	adaptertest.RequireEvent(t, h.logs, logging.MsgAdapterFatal)
	if strings.Contains(st.Err.Error(), "wrong") {
		t.Fatalf("status error leaks the token: %v", st.Err)
	}
	srv.Await(t, "gateway goroutine ended", wait, h.runEnded)
	if n := srv.GatewayRequests(); n != 1 {
		t.Errorf("%d gateway lookups, want 1", n)
	}
	if n := srv.Upgrades(); n != 0 {
		t.Errorf("%d websocket attempts with a rejected token", n)
	}
	_, err := h.a.Send(t.Context(), &message.Outbound{ChatID: "1", Text: "x"})
	if !errors.Is(err, adapter.ErrUnauthorized) {
		t.Errorf("Send with bad token: %v, want ErrUnauthorized", err)
	}
}

// TestHostileSessionStartReset: with the daily session budget spent, a
// reset_after of 30 days is clamped to the budget's 24 h.
func TestHostileSessionStartReset(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	srv.SetSessionStartLimit(0, 30*24*3600*1000)
	h := newHarness(t, srv)
	started := time.Now()
	h.start(t)
	st := h.status.WaitPhase(t, adapter.PhaseReconnecting, wait)
	if d := st.RetryAt.Sub(started); d < 24*time.Hour-time.Minute || d > 24*time.Hour+time.Minute {
		t.Errorf("next Identify scheduled in %v, want 24h", d)
	}
	requireClamp(t, h, int64(30*24*3600*1000), 24*time.Hour)
}

func TestGatewayLookupFailureRetries(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	srv.SetGatewayStatus(502)
	h := newHarness(t, srv)
	h.start(t)
	st := h.status.WaitPhase(t, adapter.PhaseReconnecting, wait)
	if !errors.Is(st.Err, adapter.ErrTemporary) || st.RetryAt.IsZero() {
		t.Fatalf("reconnecting status %+v", st)
	}
	srv.Await(t, "retries", wait, func() bool { return srv.GatewayRequests() >= 3 })
	srv.SetGatewayStatus(0)
	h.status.WaitPhase(t, adapter.PhaseConnected, wait)
	if h.metrics.ReconnectCount() < 2 {
		t.Errorf("reconnects %d", h.metrics.ReconnectCount())
	}
}

// TestResumeGatewayUnreachable: when resume_gateway_url cannot be dialled
// the client falls back to the main gateway and still resumes there.
func TestResumeGatewayUnreachable(t *testing.T) {
	leakCheck(t)
	// Port 1 on loopback: connection refused.
	srv := discordtest.New(t, discordtest.Options{ResumeGatewayURL: "ws://127.0.0.1:1/gw"})
	h := newHarness(t, srv)
	h.connected(t)
	srv.PushMessage(discordtest.Msg{Content: "one"})
	h.inbox.WaitN(t, 1, wait)
	if err := srv.Drop(); err != nil {
		t.Fatal(err)
	}
	srv.Await(t, "resume on the main gateway", wait, func() bool { return len(srv.Resumes()) == 1 })
	if r := srv.Resumes()[0]; r.Seq != 2 || r.SessionID != "fake-session-1" {
		t.Errorf("resume %+v", r)
	}
	if n := srv.GatewayRequests(); n != 2 {
		t.Errorf("%d gateway lookups, want 2 (start, fallback)", n)
	}
	srv.Await(t, "connected", wait, func() bool { return countPhase(h.status, adapter.PhaseConnected) == 2 })
}

// TestDeliverStopping: a store that is shutting down is not hammered with
// resumes; the adapter waits for Stop.
func TestDeliverStopping(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	h.a.tun.backoffMax = time.Hour
	h.connected(t)
	h.inbox.SetFail(fmt.Errorf("store: %w", adapter.ErrStopping))
	srv.PushMessage(discordtest.Msg{Content: "too late"})
	st := h.status.WaitPhase(t, adapter.PhaseReconnecting, wait)
	if !errors.Is(st.Err, adapter.ErrStopping) || time.Until(st.RetryAt) < 30*time.Minute {
		t.Fatalf("status %+v, want ErrStopping and a retry far away", st)
	}
	adaptertest.StopWithin(t, h.a)
}
