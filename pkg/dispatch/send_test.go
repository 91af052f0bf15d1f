// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/store"
)

// waitSend polls the store until send id is no longer pending.
func (e *env) waitSend(id int64) store.SendRecord {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rec, err := e.st.SendStatus(context.Background(), id)
		if err != nil {
			e.t.Fatal(err)
		}
		done := true
		for _, p := range rec.Parts {
			done = done && p.State != store.OutboxPending
		}
		if done {
			return rec
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("send %d still pending: %+v", id, rec)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSendSplitsOnceAndDedupes(t *testing.T) {
	e := newEnv(t, Options{}, allowAll)
	e.ad.limit = 40
	e.d.SetPlatforms(map[string]Platform{"p": {Adapter: e.ad, Policy: allowAll, Idempotent: true}})
	text := strings.Repeat("abcd ", 20) // 100 characters: 3 parts of ≤ 40
	ctx := context.Background()
	id, dup, err := e.d.Send(ctx, SendRequest{Platform: "p", ChatID: "c", Text: text, IdempotencyKey: "k"})
	if err != nil || dup {
		t.Fatalf("Send: %d %v %v", id, dup, err)
	}
	id2, dup, err := e.d.Send(ctx, SendRequest{Platform: "p", ChatID: "c", Text: text, IdempotencyKey: "k"})
	if err != nil || !dup || id2 != id {
		t.Fatalf("Send again: %d %v %v, want %d dup", id2, dup, err, id)
	}
	rec := e.waitSend(id)
	sent := e.ad.Sent()
	if len(rec.Parts) != 3 || len(sent) != 3 {
		t.Fatalf("parts %+v, sent %+v", rec.Parts, sent)
	}
	for i, p := range rec.Parts {
		if p.State != store.OutboxDelivered || p.PlatformMsgID == "" || sent[i].Part != i+1 || sent[i].Parts != 3 || len(sent[i].Text) > 40 || sent[i].ChatID != "c" {
			t.Fatalf("part %d: %+v sent %+v", i, p, sent[i])
		}
	}
	if len(e.agent.Calls()) != 0 {
		t.Fatal("a send called the agent")
	}
}

func TestSendRefusals(t *testing.T) {
	e := newEnv(t, Options{}, allowAll)
	ctx := context.Background()
	for _, tc := range []struct {
		req   SendRequest
		field string
	}{
		{SendRequest{ChatID: "c", Text: "x"}, "platform"},
		{SendRequest{Platform: "nope", ChatID: "c", Text: "x"}, "platform"},
		{SendRequest{Platform: "p", Text: "x"}, "chat_id"},
		{SendRequest{Platform: "p", ChatID: "c", Text: "\n"}, "text"},
		{SendRequest{Platform: "p", ChatID: "c", Text: "x", IdempotencyKey: strings.Repeat("k", MaxSendKey+1)}, "idempotency_key"},
	} {
		_, _, err := e.d.Send(ctx, tc.req)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("Send(%+v): %v, want a FieldError on %s", tc.req, err, tc.field)
		}
	}
	e.d.CloseIntake()
	if _, _, err := e.d.Send(ctx, SendRequest{Platform: "p", ChatID: "c", Text: "x"}); !errors.Is(err, ErrNotAccepting) {
		t.Fatalf("Send while stopping: %v", err)
	}
}

// A send the platform refuses ends failed with the reason once the
// delivery policy gave up; one it fails temporarily stays pending
// meanwhile and ends sent.
func TestSendFailedIsFinal(t *testing.T) {
	e := newEnv(t, Options{MaxAttempts: 3}, allowAll)
	e.ad.fail = []error{adapter.ErrTemporary, adapter.ErrTemporary, adapter.ErrTemporary}
	id, _, err := e.d.Send(context.Background(), SendRequest{Platform: "p", ChatID: "c", Text: "x", IdempotencyKey: "a"})
	if err != nil {
		t.Fatal(err)
	}
	rec := e.waitSend(id)
	if p := rec.Parts[0]; p.State != store.OutboxFailed || p.Attempts != 3 || !strings.Contains(p.LastError, "temporary") {
		t.Fatalf("after 3 temporary failures with max_attempts 3: %+v", p)
	}
	e.ad.fail = []error{adapter.ErrTemporary}
	id, _, _ = e.d.Send(context.Background(), SendRequest{Platform: "p", ChatID: "c", Text: "y", IdempotencyKey: "b"})
	if p := e.waitSend(id).Parts[0]; p.State != store.OutboxDelivered || p.Attempts != 2 {
		t.Fatalf("after one temporary failure: %+v", p)
	}
}

// A send stored by an instance that died before delivering it (a SIGKILL
// right after the commit) is delivered by the next dispatcher.
func TestSendSurvivesRestart(t *testing.T) {
	e := newEnv(t, Options{}, allowAll)
	e.close()
	st, err := store.Open(context.Background(), e.path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// What Send stores, written without a dispatcher to deliver it.
	out := []message.Outbound{{Platform: "p", ChatID: "c", Text: "later", Part: 1, Parts: 1, IdempotencyKey: "send-r-1"}}
	id, _, _, err := st.AddSend(context.Background(), "r", sendSessionPrefix+"p\x00c\x00", "p", "c", out)
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	e.open(Options{}, allowAll)
	if sent := e.ad.waitSent(t, 1); sent[0].Text != "later" {
		t.Fatalf("sent %+v", sent)
	}
	if rec := e.waitSend(id); rec.Parts[0].State != store.OutboxDelivered {
		t.Fatalf("after the restart: %+v", rec)
	}
}

func TestTurnRunsOnceUnderThePlatformRules(t *testing.T) {
	e := newEnv(t, Options{}, Policy{AllowedUsers: []string{"alice"}, Unauthorized: "reply"})
	ctx := context.Background()
	id, err := e.d.Turn(ctx, TurnRequest{Platform: "p", ChatID: "alice", Text: "hello", IdempotencyKey: "t"})
	if err != nil {
		t.Fatal(err)
	}
	id2, err := e.d.Turn(ctx, TurnRequest{Platform: "p", ChatID: "alice", Text: "hello", IdempotencyKey: "t"})
	if err != nil || id2 != id {
		t.Fatalf("Turn again: %d %v, want %d", id2, err, id)
	}
	if sent := e.ad.waitSent(t, 1); sent[0].Text != "re: hello" || sent[0].ChatID != "alice" {
		t.Fatalf("sent %+v", sent)
	}
	waitFor(t, func() bool {
		rec, _ := e.st.TurnStatus(ctx, id)
		return rec.State == store.Done && len(rec.Replies) == 1 && rec.Replies[0].State == store.OutboxDelivered
	})
	if n := len(e.agent.Calls()); n != 1 {
		t.Fatalf("agent called %d times", n)
	}
	var fe *FieldError
	if _, err := e.d.Turn(ctx, TurnRequest{Platform: "p", ChatID: "bob", Text: "hi", IdempotencyKey: "u"}); !errors.As(err, &fe) || fe.Field != "user_id" {
		t.Fatalf("turn of a user not allowed: %v", err)
	}
	if _, err := e.d.Turn(ctx, TurnRequest{Platform: "p", ChatID: "g", ChatType: "group", Text: "hi", IdempotencyKey: "v"}); !errors.As(err, &fe) || fe.Field != "user_id" {
		t.Fatalf("group turn without a user: %v", err)
	}
	if _, err := e.d.Turn(ctx, TurnRequest{Platform: "p", ChatID: "alice", Text: "hi"}); !errors.As(err, &fe) || fe.Field != "idempotency_key" {
		t.Fatalf("turn without a key: %v", err)
	}
	if n := len(e.agent.Calls()); n != 1 {
		t.Fatalf("refused turns called the agent: %d calls", n)
	}
}

// waitFor polls cond until it holds, for state without a recorder to wait
// on (the store).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSendMedia(t *testing.T) {
	srv := newMediaServer(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.pdf"), []byte("%PDF-1.4 report"), 0o600); err != nil {
		t.Fatal(err)
	}
	mo := mediaOptions(t, true)
	mo.OutboundDirs = []string{dir}
	e := newEnv(t, Options{Media: mo}, allowAll)
	e.ad.media = true
	ctx := context.Background()
	id, _, err := e.d.Send(ctx, SendRequest{Platform: "p", ChatID: "c", Text: "the report", IdempotencyKey: "k",
		Media: []SendMedia{{Source: srv.URL + "/img.png", Caption: "chart"}, {Source: filepath.Join(dir, "r.pdf")}}})
	if err != nil {
		t.Fatal(err)
	}
	rec := e.waitSend(id)
	sent := e.ad.Sent()
	if len(rec.Parts) != 3 || len(sent) != 3 || sent[0].Text != "the report" ||
		sent[1].Media == nil || sent[1].Media.Kind != message.MediaImage || sent[1].Media.Caption != "chart" ||
		sent[2].Media == nil || sent[2].Media.Name != "r.pdf" {
		t.Fatalf("parts %+v, sent %+v", rec.Parts, sent)
	}
	for i, s := range sent {
		if s.Part != i+1 || s.Parts != 3 || s.IdempotencyKey != message.IdempotencyKey("p", "send\x00k", i+1) {
			t.Fatalf("part %d numbering %+v", i+1, s)
		}
	}
	// Files only: no text part.
	id, _, err = e.d.Send(ctx, SendRequest{Platform: "p", ChatID: "c", IdempotencyKey: "k2", Media: []SendMedia{{Source: srv.URL + "/img.png"}}})
	if err != nil {
		t.Fatal(err)
	}
	if rec := e.waitSend(id); len(rec.Parts) != 1 {
		t.Fatalf("files-only send %+v", rec.Parts)
	}
	// Requests that can never succeed name the field; nothing is stored.
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("secret"), 0o600)
	closed := mediaOptions(t, false)
	ep := newEnv(t, Options{Media: closed}, allowAll)
	for name, tc := range map[string]struct {
		d   *Dispatcher
		req SendRequest
	}{
		"outside outbound_dirs": {e.d, SendRequest{Platform: "p", ChatID: "c", Text: "x", Media: []SendMedia{{Source: filepath.Join(dir, "..", filepath.Base(outside), "secret.txt")}}}},
		"private address":       {ep.d, SendRequest{Platform: "p", ChatID: "c", Text: "x", Media: []SendMedia{{Source: srv.URL + "/img.png"}}}},
		"too many files":        {e.d, SendRequest{Platform: "p", ChatID: "c", Text: "x", Media: make([]SendMedia, MaxSendMedia+1)}},
		"too large":             {e.d, SendRequest{Platform: "p", ChatID: "c", Text: "x", Media: []SendMedia{{Source: srv.URL + "/big.pdf"}}}},
	} {
		var fe *FieldError
		if _, _, err := tc.d.Send(ctx, tc.req); !errors.As(err, &fe) || fe.Field != "media" {
			t.Errorf("%s: Send = %v, want a FieldError on media", name, err)
		}
	}
	if srv.hits.Load() != 2 {
		t.Errorf("%d image downloads, want 2 (the private address is never asked)", srv.hits.Load())
	}
	noMedia := newEnv(t, Options{}, allowAll)
	var fe *FieldError
	if _, _, err := noMedia.d.Send(ctx, SendRequest{Platform: "p", ChatID: "c", Media: []SendMedia{{Source: srv.URL + "/img.png"}}}); !errors.As(err, &fe) || fe.Field != "media" {
		t.Errorf("media without a media setup: %v", err)
	}
}
