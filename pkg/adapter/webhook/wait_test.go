// SPDX-License-Identifier: Apache-2.0

package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
)

func TestSynchronousReply(t *testing.T) {
	h := start(t)
	// Play the core: answer the stored message with a two-part reply.
	go func() {
		msgs := h.inbox.WaitN(t, 1, 5*time.Second)
		for part := 1; part <= 2; part++ {
			out := msgs[0].ReplyTo()
			out.Text = []string{"", "part one", "part two"}[part]
			out.Part, out.Parts = part, 2
			out.IdempotencyKey = "k" + out.Text
			if _, err := h.a.Send(context.Background(), &out); err != nil {
				t.Errorf("Send part %d to the waiting request: %v", part, err)
			}
		}
	}()
	resp := post(t, h.url+"?wait=5s", hello, standardHeaders(t, testSecret, "msg_wait", time.Now(), hello))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d %s, want 200 with the reply", resp.StatusCode, resp.Body)
	}
	var body struct {
		ID      string   `json:"id"`
		Replies []string `json:"replies"`
	}
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		t.Fatal(err)
	}
	if body.ID != "msg_wait" || len(body.Replies) != 2 || body.Replies[0] != "part one" || body.Replies[1] != "part two" {
		t.Fatalf("body %+v", body)
	}
}

func TestSynchronousReplyTimesOut(t *testing.T) {
	h := start(t)
	hdr := standardHeaders(t, testSecret, "msg_slow", time.Now(), hello)
	hdr["Prefer"] = "wait=1"
	start := time.Now()
	resp := post(t, h.url, hello, hdr)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d, want 202 once the wait is over", resp.StatusCode)
	}
	if took := time.Since(start); took < time.Second {
		t.Fatalf("answered after %v, before the requested wait of 1s", took)
	}
	// Nobody waits any more: the reply takes the usual path, and there is
	// no reply_url.
	msgs := h.inbox.WaitN(t, 1, time.Second)
	out := msgs[0].ReplyTo()
	out.Text, out.IdempotencyKey = "late", "k-late"
	if _, err := h.a.Send(context.Background(), &out); !errors.Is(err, adapter.ErrPermanent) {
		t.Fatalf("late Send = %v, want ErrPermanent (no reply_url)", err)
	}
}

func TestSynchronousReplyBadWait(t *testing.T) {
	h := start(t)
	resp := post(t, h.url+"?wait=soon", hello, standardHeaders(t, testSecret, "msg_bad", time.Now(), hello))
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	if n := len(h.inbox.Messages()); n != 0 {
		t.Fatalf("%d messages stored from a rejected request", n)
	}
}
