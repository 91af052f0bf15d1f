// SPDX-License-Identifier: Apache-2.0

package wecom

import (
	"errors"
	"net/http"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/wecom/wecomtest"
	"github.com/heraldgw/herald/pkg/message"
)

// TestVerifyURL: the GET handshake answers the decrypted echostr, and
// refuses a bad signature or another corp's echostr.
func TestVerifyURL(t *testing.T) {
	h := newHarness(t, nil).start()
	rec := h.get(h.fake.Crypt.Verification("8237462817364"))
	if rec.Code != http.StatusOK || rec.Body.String() != "8237462817364" {
		t.Fatalf("verification: %d %q", rec.Code, rec.Body)
	}
	q := h.fake.Crypt.Verification("1")
	q.Set("msg_signature", "0000000000000000000000000000000000000000")
	if rec := h.get(q); rec.Code != http.StatusUnauthorized {
		t.Errorf("bad signature: %d", rec.Code)
	}
	other := h.fake.Crypt
	other.ReceiveID = "wwsomeoneelse"
	if rec := h.get(other.Verification("1")); rec.Code != http.StatusBadRequest {
		t.Errorf("other corp: %d", rec.Code)
	}
	if n := h.metrics.Rejections(RejectBadSignature); n != 1 {
		t.Errorf("bad_signature %d, want 1", n)
	}
	if n := h.metrics.Rejections(RejectBadCipher); n != 1 {
		t.Errorf("bad_ciphertext %d, want 1", n)
	}
}

// TestCallbackStoresOnce: a text message is stored as a direct message
// keyed on MsgId, answered with an empty 200; WeCom's retry and a replay
// of the same signed request are stored once.
func TestCallbackStoresOnce(t *testing.T) {
	h := newHarness(t, nil).start()
	cb := h.fake.Text(wecomtest.Message{ID: "4561255354251345929", From: "zhangsan", Text: "你好 <b>&"})
	for range 3 {
		if rec := h.post(cb); rec.Code != http.StatusOK || rec.Body.Len() != 0 {
			t.Fatalf("POST: %d %q", rec.Code, rec.Body)
		}
	}
	msgs := h.inbox.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d stored, want 1", len(msgs))
	}
	m := msgs[0]
	if m.EventID != "4561255354251345929" || m.ChatID != "zhangsan" || m.SenderID != "zhangsan" ||
		m.ChatType != message.ChatDirect || m.Text != "你好 <b>&" || m.Platform != TypeName {
		t.Errorf("stored %+v", m)
	}
}

// TestCallbackRefuses: a forged signature is 401 and stores nothing;
// events and other applications' messages are acknowledged and
// skipped; a store failure is not acknowledged, so WeCom retries.
func TestCallbackRefuses(t *testing.T) {
	h := newHarness(t, nil).start()
	cb := h.fake.Text(wecomtest.Message{ID: "1", From: "zhangsan", Text: "hi"})
	if rec := h.post(cb.Tampered()); rec.Code != http.StatusUnauthorized {
		t.Errorf("tampered: %d", rec.Code)
	}
	for _, m := range []wecomtest.Message{
		{From: "zhangsan", Type: "event"},
		{ID: "2", From: "zhangsan", Type: "event"},
		{ID: "3", From: "zhangsan", Text: "hi", AgentID: 1000099},
	} {
		if rec := h.post(h.fake.Text(m)); rec.Code != http.StatusOK {
			t.Errorf("%+v: %d", m, rec.Code)
		}
	}
	h.inbox.SetFail(errors.New("disk full"))
	if rec := h.post(cb); rec.Code != http.StatusInternalServerError {
		t.Errorf("store failure: %d", rec.Code)
	}
	h.inbox.SetFail(nil)
	if rec := h.post(cb); rec.Code != http.StatusOK {
		t.Errorf("retry: %d", rec.Code)
	}
	if n := len(h.inbox.Messages()); n != 1 {
		t.Errorf("%d stored, want 1", n)
	}
	for reason, want := range map[string]int{RejectBadSignature: 1, RejectUnsupported: 2, RejectOtherAgent: 1} {
		if n := h.metrics.Rejections(reason); n != want {
			t.Errorf("%s %d, want %d", reason, n, want)
		}
	}
}

// TestCallbackClosed: before Start and after Stop the callback answers
// 503, so that WeCom retries with the next instance.
func TestCallbackClosed(t *testing.T) {
	h := newHarness(t, nil)
	cb := h.fake.Text(wecomtest.Message{ID: "1", From: "zhangsan", Text: "hi"})
	if rec := h.post(cb); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("before Start: %d", rec.Code)
	}
	h.start()
	if rec := h.post(cb); rec.Code != http.StatusOK {
		t.Errorf("started: %d", rec.Code)
	}
}
