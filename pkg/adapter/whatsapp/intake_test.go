// SPDX-License-Identifier: Apache-2.0

package whatsapp

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/whatsapp/whatsapptest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestHandshake(t *testing.T) {
	h := newHarness(t, "", nil).start()
	tok := whatsapptest.DefaultVerifyToken
	if rec := h.get("hub.mode=subscribe&hub.verify_token=" + tok + "&hub.challenge=1158201444"); rec.Code != 200 || rec.Body.String() != "1158201444" {
		t.Fatalf("handshake: %d %q, want 200 and the challenge", rec.Code, rec.Body)
	}
	for _, q := range []string{
		"hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
		"hub.mode=unsubscribe&hub.verify_token=" + tok + "&hub.challenge=1",
		"hub.mode=subscribe&hub.challenge=1",
		"hub.mode=subscribe&hub.verify_token=" + tok,
	} {
		if rec := h.get(q); rec.Code != http.StatusForbidden {
			t.Errorf("%s: %d %q, want 403", q, rec.Code, rec.Body)
		}
	}
	if n := h.metrics.Rejections(RejectBadVerify); n != 4 {
		t.Errorf("bad_verify_token counted %d, want 4", n)
	}
}

func TestBadSignatureRejected(t *testing.T) {
	h := newHarness(t, "", nil).start()
	body := h.fake.Text(whatsapptest.Message{ID: "wamid.sig", From: ann, Text: "hi"})
	for name, send := range map[string]func() int{
		"unsigned":     func() int { return h.post(body, "").Code },
		"wrong secret": func() int { return h.post(body, "not-the-app-secret").Code },
		"body changed": func() int {
			req, _ := whatsapptest.NewRequest(t.Context(), h.a.Path(), h.fake.AppSecret, body)
			req.Header.Set(HeaderSignature, whatsapptest.Sign(h.fake.AppSecret, append([]byte(" "), body...)))
			rec := newRecorder()
			h.a.ServeHTTP(rec, req)
			return rec.Code
		},
		"not hex": func() int {
			req, _ := whatsapptest.NewRequest(t.Context(), h.a.Path(), "", body)
			req.Header.Set(HeaderSignature, "sha256=zz")
			rec := newRecorder()
			h.a.ServeHTTP(rec, req)
			return rec.Code
		},
	} {
		if code := send(); code != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", name, code)
		}
	}
	if n := h.metrics.Rejections(RejectBadSignature); n != 4 {
		t.Errorf("bad_signature counted %d, want 4", n)
	}
	if h.inbox.Calls() != 0 {
		t.Errorf("%d deliveries of badly signed notifications", h.inbox.Calls())
	}
}

func TestTextStoredAndRedeliveryOnce(t *testing.T) {
	h := newHarness(t, "", nil).start()
	body := h.fake.Text(whatsapptest.Message{ID: "wamid.A", From: ann, Name: "Ann", Text: "hello"},
		whatsapptest.Message{ID: "wamid.B", From: ann, Name: "Ann", Text: "again"})
	h.deliver(body)
	h.deliver(body) // Meta redelivers: same wamids
	msgs := h.inbox.Messages()
	if len(msgs) != 2 || h.inbox.Calls() != 4 {
		t.Fatalf("%d stored of %d deliveries, want 2 of 4", len(msgs), h.inbox.Calls())
	}
	m := msgs[0]
	if m.EventID != "wamid.A" || m.MessageID != "wamid.A" || m.ChatID != ann || m.SenderID != ann ||
		m.SenderName != "Ann" || m.Text != "hello" || m.ChatType != message.ChatDirect {
		t.Errorf("stored %+v", m)
	}
}

func TestNotStoredNotAcknowledged(t *testing.T) {
	h := newHarness(t, "", nil).start()
	body := h.fake.Text(whatsapptest.Message{ID: "wamid.fail", From: ann, Text: "hi"})
	h.inbox.SetFail(errors.New("disk full"))
	if rec := h.post(body, h.fake.AppSecret); rec.Code != http.StatusInternalServerError {
		t.Fatalf("store failure answered %d, want 500 (Meta retries)", rec.Code)
	}
	h.inbox.SetFail(fmt.Errorf("store: %w", adapter.ErrStopping))
	if rec := h.post(body, h.fake.AppSecret); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("stopping answered %d, want 503", rec.Code)
	}
	h.inbox.SetFail(nil)
	h.deliver(body)
	if n := len(h.inbox.Messages()); n != 1 {
		t.Fatalf("%d stored after the retry, want 1", n)
	}
}

func TestBodyBounds(t *testing.T) {
	h := newHarness(t, "", func(c *Config) { c.MaxBodyBytes = 512 }).start()
	big := h.fake.Text(whatsapptest.Message{ID: "wamid.big", From: ann, Text: strings.Repeat("x", 600)})
	if rec := h.post(big, h.fake.AppSecret); rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d, want 413", rec.Code)
	}
	if rec := h.post([]byte("[1,2"), h.fake.AppSecret); rec.Code != http.StatusBadRequest {
		t.Fatalf("not JSON: %d, want 400", rec.Code)
	}
	if h.metrics.Rejections(RejectTooLarge) != 1 || h.metrics.Rejections(RejectMalformed) != 1 {
		t.Errorf("rejections %v", h.metrics.Rejects)
	}
}

func TestUnsupportedAndOtherNumberAcknowledged(t *testing.T) {
	h := newHarness(t, "", nil).start()
	h.deliver(h.fake.Text(whatsapptest.Message{ID: "wamid.loc", From: ann, Type: "location"}))
	other := whatsapptest.Notification("999", []whatsapptest.Message{{ID: "wamid.o", From: ann, Text: "hi"}}, nil)
	h.deliver(other)
	msgs := h.inbox.Messages()
	if len(msgs) != 1 || msgs[0].EventID != "wamid.loc" || len(msgs[0].Unsupported) != 1 || msgs[0].Unsupported[0] != "location" {
		t.Fatalf("deliveries %+v, want the location as unsupported", msgs)
	}
	if h.metrics.Rejections(RejectOtherNumber) != 1 {
		t.Errorf("rejections %v", h.metrics.Rejects)
	}
	// The location opened the window: a push goes out as text.
	if _, err := h.a.Send(t.Context(), &message.Outbound{ChatID: ann, Text: "about your location"}); err != nil {
		t.Fatalf("push after a location: %v", err)
	}
}

func TestClosedBeforeStartAndAfterStop(t *testing.T) {
	h := newHarness(t, "", nil)
	body := h.fake.Text(whatsapptest.Message{ID: "wamid.early", From: ann, Text: "hi"})
	if rec := h.post(body, h.fake.AppSecret); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("before Start: %d, want 503", rec.Code)
	}
	h.start()
	h.deliver(body)
	adaptertestStop(t, h)
	if rec := h.post(body, h.fake.AppSecret); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("after Stop: %d, want 503", rec.Code)
	}
}

func TestStatusNotifications(t *testing.T) {
	h := newHarness(t, "", nil).start()
	h.st.WaitPhase(t, adapter.PhaseConnected, wait)
	h.deliver(h.fake.Statuses(
		whatsapptest.Status{ID: "wamid.s1", Status: "sent", Recipient: ann},
		whatsapptest.Status{ID: "wamid.s1", Status: "delivered", Recipient: ann},
		whatsapptest.Status{ID: "wamid.s1", Status: "read", Recipient: ann},
		whatsapptest.Status{ID: "wamid.s2", Status: "failed", Recipient: ann, ErrorCode: 131026, Error: "Message undeliverable"},
	))
	got := h.a.StatusCounts()
	for _, s := range []string{"sent", "delivered", "read", "failed"} {
		if got[s] != 1 {
			t.Errorf("status %s counted %d, want 1 (%v)", s, got[s], got)
		}
	}
	last := h.st.Last()
	if last.Phase != adapter.PhaseConnected || !strings.Contains(last.Alarm, "131026") || !strings.Contains(last.Alarm, "wamid.s2") {
		t.Errorf("last status %+v, want the failed delivery as alarm", last)
	}
	if h.inbox.Calls() != 0 {
		t.Errorf("statuses were delivered as messages")
	}
}

func TestWindowRecordedFromTimestamp(t *testing.T) {
	h := newHarness(t, t.TempDir(), nil).start()
	recent := time.Now().Add(-2 * time.Hour)
	h.deliver(h.fake.Text(whatsapptest.Message{ID: "wamid.recent", From: ann, Text: "hi", At: recent}))
	if last, ok := h.a.window.get(ann); !ok || last.Unix() != recent.Unix() {
		t.Fatalf("window record %v %v, want the message's own time %v", last, ok, recent)
	}
	// A redelivery of an older message never moves the time back.
	h.deliver(h.fake.Text(whatsapptest.Message{ID: "wamid.older", From: ann, Text: "hi", At: recent.Add(-time.Hour)}))
	if last, _ := h.a.window.get(ann); last.Unix() != recent.Unix() {
		t.Fatalf("window record moved back to %v", last)
	}
	// A message older than the window leaves no record.
	bob := "4915550002"
	h.deliver(h.fake.Text(whatsapptest.Message{ID: "wamid.stale", From: bob, Text: "hi", At: time.Now().Add(-30 * time.Hour)}))
	if last, ok := h.a.window.get(bob); ok {
		t.Fatalf("a 30 h old message is recorded: %v", last)
	}
}

func TestFailedStatusKeepsFatalPhase(t *testing.T) {
	fake := whatsapptest.New(t)
	fake.ExpireToken()
	h := newHarnessFake(t, fake, "", nil).start()
	h.st.WaitPhase(t, adapter.PhaseFatal, wait)
	h.deliver(fake.Statuses(whatsapptest.Status{ID: "wamid.f", Status: "failed", Recipient: ann, ErrorCode: 131026, Error: "undeliverable"}))
	if last := h.st.Last(); last.Phase != adapter.PhaseFatal || !strings.Contains(last.Alarm, "131026") {
		t.Fatalf("last status %+v, want still fatal, with the failed delivery as alarm", last)
	}
}
