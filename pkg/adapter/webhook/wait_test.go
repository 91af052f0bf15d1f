// SPDX-License-Identifier: Apache-2.0

package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/webhook"
	"github.com/heraldgw/herald/pkg/adapter/webhook/webhooktest"
	"github.com/heraldgw/herald/pkg/message"
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
	body := replied(t, resp)
	if body.ID != "msg_wait" || !body.Complete || len(body.Replies) != 2 || body.Replies[0] != "part one" || body.Replies[1] != "part two" {
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

// repliedBody is the 200 answer of a request that waited.
type repliedBody struct {
	ID       string   `json:"id"`
	Replies  []string `json:"replies"`
	Complete bool     `json:"complete"`
}

func replied(t *testing.T, resp *webhooktest.Response) repliedBody {
	t.Helper()
	var body repliedBody
	if err := json.Unmarshal(resp.Body, &body); err != nil {
		t.Fatalf("answer %q: %v", resp.Body, err)
	}
	return body
}

// waitClock replaces the timer of ?wait= requests: once a request waits
// for its reply (its message stored), waitStarted returns its wait.
type waitClock struct {
	started chan *manualWait
}

// manualWait is the wait of one request.
type manualWait struct {
	fire  chan time.Time
	ended chan struct{} // closed once the request no longer waits
}

// end ends the wait, as the timer would.
func (w *manualWait) end() { w.fire <- time.Now() }

// startManual is start with a waitClock.
func startManual(t *testing.T, opts ...harnessOpt) (*harness, *waitClock) {
	t.Helper()
	h := newAdapter(t, opts...)
	c := &waitClock{started: make(chan *manualWait, 64)}
	webhook.SetWaitTimer(h.a, func(time.Duration) (<-chan time.Time, func() bool) {
		w := &manualWait{fire: make(chan time.Time, 1), ended: make(chan struct{})}
		c.started <- w
		return w.fire, func() bool { close(w.ended); return true }
	})
	return mount(t, h), c
}

func (c *waitClock) waitStarted(t *testing.T) *manualWait {
	t.Helper()
	select {
	case w := <-c.started:
		return w
	case <-time.After(10 * time.Second):
		t.Fatal("the request never started waiting for its reply")
		return nil
	}
}

// postAsync sends a request in the background; the answer arrives on the
// returned channel.
func postAsync(t *testing.T, url string, body []byte, hdr map[string]string) <-chan *webhooktest.Response {
	t.Helper()
	ch := make(chan *webhooktest.Response, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			t.Error(err)
			ch <- nil
			return
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := webhooktest.Do(req)
		if err != nil {
			t.Errorf("POST %s: %v", url, err)
		}
		ch <- resp
	}()
	return ch
}

func answer(t *testing.T, ch <-chan *webhooktest.Response) *webhooktest.Response {
	t.Helper()
	select {
	case r := <-ch:
		if r == nil {
			t.FailNow()
		}
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no answer to the waiting request")
		return nil
	}
}

// withReceiver configures rcv as the reply_url.
func withReceiver(rcv *webhooktest.Receiver) harnessOpt {
	return withConfig(func(c *webhook.Config) { c.ReplyURL = rcv.URL })
}

// replyPart is part n of parts of the reply to m, as the core builds it.
func replyPart(m *message.Inbound, n, parts int, text string) *message.Outbound {
	out := m.ReplyTo()
	out.Text, out.Part, out.Parts = text, n, parts
	out.IdempotencyKey = message.IdempotencyKey(m.Platform, m.EventID, n)
	return &out
}

// The wait ends between the parts of a two-part reply: the part written to
// the waiting request is in its answer, the other goes to the reply URL;
// neither is lost.
func TestSynchronousReplyPartsAcrossTheTimeout(t *testing.T) {
	rcv := webhooktest.NewReceiver(t)
	h, clock := startManual(t, withReceiver(rcv))
	resp := postAsync(t, h.url+"?wait=30s", hello, standardHeaders(t, testSecret, "msg_split", time.Now(), hello))
	wait := clock.waitStarted(t)
	m := h.inbox.WaitN(t, 1, 5*time.Second)[0]
	if _, err := h.a.Send(ctxT(t), replyPart(m, 1, 2, "part one")); err != nil {
		t.Fatalf("Send part 1: %v", err)
	}
	wait.end()
	r := answer(t, resp)
	if r.StatusCode != http.StatusOK {
		t.Fatalf("status %d %s, want 200 with the part written before the wait ended", r.StatusCode, r.Body)
	}
	if body := replied(t, r); body.Complete || len(body.Replies) != 1 || body.Replies[0] != "part one" {
		t.Fatalf("answer %s, want part one only, incomplete", r.Body)
	}
	if len(rcv.Requests()) != 0 {
		t.Fatalf("part one also went to the reply URL: %+v", rcv.Requests())
	}
	if _, err := h.a.Send(ctxT(t), replyPart(m, 2, 2, "part two")); err != nil {
		t.Fatalf("Send part 2 after the wait: %v", err)
	}
	got := rcv.Delivered()
	if len(got) != 1 || got[0].Text != "part two" || got[0].Part != 2 || got[0].InReplyTo != "msg_split" {
		t.Fatalf("reply URL got %+v, want part two only", got)
	}
}

// A single-part reply offered as the wait ends reaches the client exactly
// once: in the answer, or at the reply URL.
func TestSynchronousReplyRacesTheTimeout(t *testing.T) {
	rcv := webhooktest.NewReceiver(t)
	h, clock := startManual(t, withReceiver(rcv))
	const rounds = 100
	inAnswer := 0
	for i := range rounds {
		id := fmt.Sprintf("msg_race_%d", i)
		resp := postAsync(t, h.url+"?wait=30s", hello, standardHeaders(t, testSecret, id, time.Now(), hello))
		wait := clock.waitStarted(t)
		m := h.inbox.WaitN(t, i+1, 5*time.Second)[i]
		// Half the rounds end the wait first, half offer the reply first;
		// either way the two race.
		if i%2 == 0 {
			wait.end()
		}
		sent := make(chan error, 1)
		go func() {
			_, err := h.a.Send(ctxT(t), replyPart(m, 1, 1, "reply "+id))
			sent <- err
		}()
		if i%2 == 1 {
			wait.end()
		}
		if err := <-sent; err != nil {
			t.Fatalf("round %d: Send: %v", i, err)
		}
		r := answer(t, resp)
		answered := r.StatusCode == http.StatusOK && strings.Contains(string(r.Body), `"reply `+id+`"`)
		if answered {
			inAnswer++
		} else if r.StatusCode != http.StatusAccepted {
			t.Fatalf("round %d: status %d %s", i, r.StatusCode, r.Body)
		}
		atURL := 0
		for _, d := range rcv.Delivered() {
			if d.InReplyTo == id {
				atURL++
			}
		}
		if n := atURL + map[bool]int{true: 1}[answered]; n != 1 {
			t.Fatalf("round %d: the reply reached the client %d times (answer: %v, reply URL: %d), want once", i, n, answered, atURL)
		}
	}
	t.Logf("%d of %d replies in the answer, the others at the reply URL", inAnswer, rounds)
}

// A client that goes away before its reply is written does not get it
// counted: the reply goes to the reply URL.
func TestSynchronousReplyClientGone(t *testing.T) {
	rcv := webhooktest.NewReceiver(t)
	h, clock := startManual(t, withReceiver(rcv))
	ctx, cancel := context.WithCancel(ctxT(t))
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.url+"?wait=30s", bytes.NewReader(hello))
	for k, v := range standardHeaders(t, testSecret, "msg_gone", time.Now(), hello) {
		req.Header.Set(k, v)
	}
	done := make(chan error, 1)
	go func() {
		_, err := webhooktest.Do(req)
		done <- err
	}()
	wait := clock.waitStarted(t)
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the cancelled request got an answer")
	}
	// Until the server notices the connection is gone, a write to it may
	// still succeed, and TCP cannot tell herald otherwise.
	select {
	case <-wait.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not notice its client went away")
	}
	m := h.inbox.WaitN(t, 1, 5*time.Second)[0]
	if _, err := h.a.Send(ctxT(t), replyPart(m, 1, 1, "for nobody in particular")); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := rcv.Delivered(); len(got) != 1 || got[0].InReplyTo != "msg_gone" {
		t.Fatalf("reply URL got %+v", got)
	}
}

// Only the request that stored a message may wait for its reply: a
// duplicate POST carrying the victim's delivery id and ?wait= must not
// receive it, in every signature mode.
func TestSynchronousReplyOnlyForTheStoringRequest(t *testing.T) {
	modes := []struct {
		name string
		opt  harnessOpt
		hdr  func(t *testing.T) map[string]string
	}{
		{"standard webhooks", withConfig(func(c *webhook.Config) {}), func(t *testing.T) map[string]string {
			// The victim's own signed headers, replayed within the
			// timestamp tolerance.
			return standardHeaders(t, testSecret, "victim-1", time.Now(), hello)
		}},
		{"github", withConfig(func(c *webhook.Config) { c.Signature = webhook.SchemeGitHub }), func(t *testing.T) map[string]string {
			return map[string]string{"X-Hub-Signature-256": webhooktest.SignGitHub(testSecret, hello), "X-GitHub-Delivery": "victim-1"}
		}},
		{"insecure", withConfig(func(c *webhook.Config) { c.Secret = secretRefZero(); c.InsecureNoSignature = true }), func(t *testing.T) map[string]string {
			return map[string]string{"Idempotency-Key": "victim-1"}
		}},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			rcv := webhooktest.NewReceiver(t)
			h, clock := startManual(t, withReceiver(rcv), mode.opt)
			hdr := mode.hdr(t)
			if r := post(t, h.url, hello, hdr); r.StatusCode != http.StatusAccepted || r.ID != "victim-1" {
				t.Fatalf("victim: %d %s", r.StatusCode, r.Body)
			}
			attacker := postAsync(t, h.url+"?wait=30s", hello, hdr)
			wait := clock.waitStarted(t)
			if n, calls := len(h.inbox.Messages()), h.inbox.Calls(); n != 1 || calls != 2 {
				t.Fatalf("stored %d (calls %d), want the duplicate not stored", n, calls)
			}
			m := h.inbox.Messages()[0]
			if _, err := h.a.Send(ctxT(t), replyPart(m, 1, 1, "for the victim only")); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if got := rcv.Delivered(); len(got) != 1 || got[0].Text != "for the victim only" {
				t.Fatalf("victim's reply URL got %+v, want the reply", got)
			}
			wait.end()
			r := answer(t, attacker)
			if r.StatusCode != http.StatusAccepted || strings.Contains(string(r.Body), "victim only") {
				t.Fatalf("duplicate request got %d %s, want 202 without the reply", r.StatusCode, r.Body)
			}
		})
	}
}
