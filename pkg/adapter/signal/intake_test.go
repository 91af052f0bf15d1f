// SPDX-License-Identifier: Apache-2.0

package signal

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/logging"
	"github.com/heraldgw/herald/pkg/message"
)

func TestIntakeDirectAndGroup(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	dm := h.fake.Message("hello")
	h.fake.Push(dm)
	g := h.fake.Message("in the group")
	g.GroupID = "Z3JvdXAtaWQtMzItYnl0ZXMtbG9uZy4uLi4uLi4uLi4="
	id := h.fake.Push(g)
	got := h.Inbox.WaitN(t, 2, wait)
	d := got[0]
	if d.EventID != dm.SourceUUID+":"+itoa(dm.Timestamp) || d.ChatID != "+15550001" || d.SenderID != "+15550001" ||
		d.ChatType != message.ChatDirect || d.Text != "hello" || d.MessageID != itoa(dm.Timestamp) || d.SenderName != "Ann" || d.Platform != TypeName {
		t.Errorf("direct message = %+v", d)
	}
	gm := got[1]
	if gm.ChatID != GroupPrefix+g.GroupID || gm.ChatType != message.ChatGroup || gm.SenderID != "+15550001" {
		t.Errorf("group message = %+v", gm)
	}
	// The id of the last stored event is in the state directory.
	h.fake.Wait(t, wait, "the cursor file", func() bool {
		b, _ := os.ReadFile(filepath.Join(h.Env.StateDir, cursorFile))
		return strings.TrimSpace(string(b)) == id
	})
}

func TestIntakeHiddenNumber(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	e := h.fake.Message("hi")
	e.Source, e.SourceNumber = e.SourceUUID, ""
	h.fake.Push(e)
	m := h.Inbox.WaitN(t, 1, wait)[0]
	if m.SenderID != e.SourceUUID || m.ChatID != e.SourceUUID {
		t.Errorf("sender %q chat %q, want the ACI %q", m.SenderID, m.ChatID, e.SourceUUID)
	}
}

func TestIntakeSkips(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	receipt := h.fake.Message("")
	receipt.NoData = true
	h.fake.Push(receipt)
	h.fake.Push(h.fake.Message("")) // attachment only: no text
	h.fake.PushRaw(`{"envelope":`)
	h.fake.PushRaw(`{"account":"+15550100"}`)
	last := h.fake.Push(h.fake.Message("after"))
	if m := h.Inbox.WaitN(t, 1, wait); m[0].Text != "after" {
		t.Fatalf("stored %q", m[0].Text)
	}
	for reason, n := range map[string]int{reasonNotMessage: 1, reasonNoText: 1, reasonMalformed: 2} {
		if got := h.Metrics.Rejections(reason); got != n {
			t.Errorf("Rejected(%q) = %d, want %d", reason, got, n)
		}
	}
	h.fake.Wait(t, wait, "the cursor at the last event", func() bool { return h.a.cursor.get(h.Env.Log) == last })
}

func TestExpandMentions(t *testing.T) {
	// "😀" is two UTF-16 code units: offsets count them.
	text := "😀 \uFFFC and \uFFFC, hi"
	got := expandMentions(text, []mention{
		{Name: "Ann", Start: 3, Length: 1},
		{Number: "+15550002", Start: 9, Length: 1},
		{Name: "out of range", Start: 99, Length: 1},
	})
	if want := "😀 @Ann and @+15550002, hi"; got != want {
		t.Errorf("expandMentions = %q, want %q", got, want)
	}
}

// A message whose storing fails is not taken as handled: the stream is
// reopened from the last stored event and the daemon sends it again.
func TestStoreFailureReplays(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	first := h.fake.Push(h.fake.Message("one"))
	h.Inbox.WaitN(t, 1, wait)
	h.Inbox.SetFail(adapter.ErrStopping)
	h.fake.Push(h.fake.Message("two"))
	h.fake.Wait(t, wait, "a reopened stream", func() bool { return h.fake.Opened() >= 2 })
	h.Inbox.SetFail(nil)
	got := h.Inbox.WaitN(t, 2, wait)
	if got[1].Text != "two" {
		t.Fatalf("second stored %q", got[1].Text)
	}
	ids := h.fake.LastEventIDs()
	if ids[0] != "" || ids[1] != first {
		t.Errorf("Last-Event-ID of the streams = %q, want none then %q", ids, first)
	}
}

// herald restarts while the daemon keeps running: what arrived in between
// and what was written but not stored comes again, and nothing stored
// before is stored twice.
func TestResumeAcrossRestart(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	a := h.fake.Message("before")
	id := h.fake.Push(a)
	h.Inbox.WaitN(t, 1, wait)
	adaptertest.Stop(t, h.a, wait)

	h.fake.Push(h.fake.Message("while down"))
	second := h.build(t)
	inbox := &adaptertest.Inbox{}
	if err := second.Start(t.Context(), inbox); err != nil {
		t.Fatal(err)
	}
	got := inbox.WaitN(t, 1, wait)
	if got[0].Text != "while down" {
		t.Errorf("the new instance got %q first, want the message sent while herald was down", got[0].Text)
	}
	ids := h.fake.LastEventIDs()
	if ids[len(ids)-1] != id {
		t.Errorf("Last-Event-ID %q, want %q", ids[len(ids)-1], id)
	}
	if inbox.Calls() != 1 {
		t.Errorf("%d deliveries, want 1", inbox.Calls())
	}
}

// TestCursorMovesToAnotherNode: in cluster mode the last event id is kept
// in the cluster's store (a States shared by every node). The instance
// that takes the platform over on another node, whose own state directory
// is empty, asks for the events after it and gets the one that arrived
// while no instance ran.
func TestCursorMovesToAnotherNode(t *testing.T) {
	shared := &adaptertest.States{}
	h := newHarness(t)
	h.Env.States = shared
	h.a = h.build(t)
	h.start(t)
	id := h.fake.Push(h.fake.Message("before"))
	h.Inbox.WaitN(t, 1, wait)
	h.fake.Wait(t, wait, "the id saved in the shared states", func() bool { return strings.TrimSpace(shared.Get(cursorFile)) == id })
	adaptertest.Stop(t, h.a, wait)

	h.fake.Push(h.fake.Message("while the platform moved"))
	other := adaptertest.NewRig(t, TypeName) // another node: its own state directory
	other.Env.States = shared
	second := adaptertest.Build(t, New, h.conf, other.Env)
	second.backoff = adaptertest.FastBackoff
	if err := second.Start(t.Context(), other.Inbox); err != nil {
		t.Fatal(err)
	}
	if got := other.Inbox.WaitN(t, 1, wait); got[0].Text != "while the platform moved" {
		t.Errorf("the new node got %q first, want the message sent while the platform moved", got[0].Text)
	}
	if ids := h.fake.LastEventIDs(); ids[len(ids)-1] != id {
		t.Errorf("Last-Event-ID %q, want %q", ids[len(ids)-1], id)
	}
	if ents, _ := os.ReadDir(other.Env.StateDir); len(ents) != 0 {
		t.Errorf("the new node's state directory holds %d files, want none", len(ents))
	}
}

// A restarted daemon does not know the old id: it sends every kept event,
// and the store keeps each once.
func TestDaemonRestartSendsKept(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	h.fake.Push(h.fake.Message("old"))
	h.Inbox.WaitN(t, 1, wait)
	h.fake.Restart()
	h.fake.Wait(t, wait, "a reopened stream", func() bool { return h.fake.Opened() >= 2 })
	h.fake.Push(h.fake.Message("new"))
	got := h.Inbox.WaitN(t, 2, wait)
	if got[1].Text != "new" {
		t.Errorf("stored %q after the daemon restart", got[1].Text)
	}
}

// A replayed event (the same envelope twice) is stored once.
func TestReplayStoredOnce(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	e := h.fake.Message("twice")
	h.fake.Push(e)
	h.fake.Push(e)
	h.fake.Push(h.fake.Message("end"))
	h.Inbox.WaitN(t, 2, wait)
	h.fake.Wait(t, wait, "three deliveries", func() bool { return h.Inbox.Calls() == 3 })
	if n := len(h.Inbox.Messages()); n != 2 {
		t.Errorf("%d messages stored, want 2", n)
	}
}

func TestDaemonDownReconnecting(t *testing.T) {
	h := newHarness(t)
	h.fake.Down()
	if err := h.a.Start(t.Context(), h.Inbox); err != nil {
		t.Fatal(err)
	}
	st := h.St.WaitPhase(t, adapter.PhaseReconnecting, wait)
	if st.Err == nil || !strings.Contains(st.Err.Error(), "daemon not answering") {
		t.Errorf("reconnecting with %v", st.Err)
	}
	h.fake.Up()
	h.St.WaitPhase(t, adapter.PhaseConnected, wait)
	h.fake.Push(h.fake.Message("back"))
	h.Inbox.WaitN(t, 1, wait)
}

func TestBlackholedStreamReopened(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.IdleTimeout = time.Second })
	h.fake.SetKeepAlive(100 * time.Millisecond)
	h.start(t)
	h.fake.Blackhole()
	h.fake.Wait(t, wait, "an idle stream reported", func() bool {
		for _, s := range h.St.All() {
			if s.Phase == adapter.PhaseReconnecting && errors.Is(s.Err, errIdle) {
				return true
			}
		}
		return false
	})
	h.fake.Unblackhole()
	h.fake.Wait(t, wait, "a reopened stream", func() bool { return h.fake.Opened() >= 2 })
	h.fake.Push(h.fake.Message("after"))
	h.Inbox.WaitN(t, 1, wait)
}

// The keepalive keeps a quiet stream open past idle_timeout.
func TestKeepAliveKeepsStream(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.IdleTimeout = time.Second })
	h.fake.SetKeepAlive(50 * time.Millisecond)
	h.start(t)
	before := h.fake.Opened()
	// Twice idle_timeout of silence but for keepalives (40 of them, 50 ms
	// apart), then a message on the same stream.
	h.fake.Wait(t, wait, "40 keepalives", func() bool { return h.fake.KeepAlives() >= 40 })
	h.fake.Push(h.fake.Message("still here"))
	h.Inbox.WaitN(t, 1, wait)
	if got := h.fake.Opened(); got != before {
		t.Errorf("%d streams opened, want %d: keepalives did not count", got, before)
	}
}

func TestUnknownAccountFatal(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Account = "+15559999" })
	if err := h.a.Start(t.Context(), h.Inbox); err != nil {
		t.Fatal(err)
	}
	st := h.St.WaitPhase(t, adapter.PhaseFatal, wait)
	if !errors.Is(st.Err, adapter.ErrUnauthorized) {
		t.Errorf("fatal with %v, want ErrUnauthorized", st.Err)
	}
	adaptertest.RequireEvent(t, h.Logs, logging.MsgAdapterFatal)
	if n := h.fake.Opened(); n != 0 {
		t.Errorf("%d streams opened", n)
	}
}

func TestAccountQuery(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Account = account })
	h.start(t)
	h.fake.Push(h.fake.Message("hi"))
	h.Inbox.WaitN(t, 1, wait)
	if _, err := h.a.Send(t.Context(), &message.Outbound{ChatID: "+15550001", Text: "yo"}); err != nil {
		t.Fatal(err)
	}
	if s := h.fake.Sent(); len(s) != 1 || s[0].Account != account {
		t.Errorf("sent %+v, want params.account %q", s, account)
	}
}

func TestNotADaemonFatal(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.URL += "/nope" })
	if err := h.a.Start(t.Context(), h.Inbox); err != nil {
		t.Fatal(err)
	}
	h.St.WaitPhase(t, adapter.PhaseFatal, wait)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A daemon that accepts the connection and never answers: the stream's
// opening is bounded by request_timeout, then retried.
func TestOpenWithoutAnswer(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.RequestTimeout = 200 * time.Millisecond })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	h.conf.URL = "http://" + l.Addr().String()
	a := h.build(t)
	if err := a.Start(t.Context(), h.Inbox); err != nil {
		t.Fatal(err)
	}
	if st := h.St.WaitPhase(t, adapter.PhaseReconnecting, wait); !errors.Is(st.Err, errNoAnswer) {
		t.Errorf("reconnecting with %v, want %v", st.Err, errNoAnswer)
	}
}
