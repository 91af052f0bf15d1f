// SPDX-License-Identifier: Apache-2.0

package webhooktest

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return c
}

// send posts body with an Idempotency-Key, signed like the adapter does.
func send(t *testing.T, r *Receiver, key string, body []byte) *Response {
	t.Helper()
	req, err := NewRequest(ctx(t), r.URL, secret, body, key)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Idempotency-Key", key)
	resp, err := Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestReceiverIdempotency(t *testing.T) {
	r := NewReceiver(t, WithSecret(secret))
	a := []byte(`{"id":"k1","text":"a"}`)
	if got := send(t, r, "k1", a); got.StatusCode != 200 || got.ID != "rcv-1" {
		t.Fatalf("first: %d %q", got.StatusCode, got.ID)
	}
	if got := send(t, r, "k1", a); got.StatusCode != 200 || got.ID != "rcv-1" {
		t.Fatalf("repeat: %d %q, want the recorded answer", got.StatusCode, got.ID)
	}
	if got := send(t, r, "k1", []byte(`{"id":"k1","text":"b"}`)); got.StatusCode != 422 {
		t.Fatalf("same key, other body: %d, want 422", got.StatusCode)
	}
	if got := send(t, r, "k2", a); got.StatusCode != 200 || got.ID != "rcv-2" {
		t.Fatalf("other key: %d %q", got.StatusCode, got.ID)
	}
	if len(r.Delivered()) != 2 || r.Duplicates() != 1 {
		t.Fatalf("delivered %d, duplicates %d", len(r.Delivered()), r.Duplicates())
	}
	reqs := r.Requests()
	if !reqs[0].Delivered || !reqs[1].Duplicate || reqs[2].Status != 422 || reqs[2].Delivered {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestReceiverSignature(t *testing.T) {
	r := NewReceiver(t, WithSecret(secret))
	unsigned, _ := NewRequest(ctx(t), r.URL, "", []byte(`{}`), "k")
	bad, _ := NewRequest(ctx(t), r.URL, "whsec_b3RoZXI=", []byte(`{}`), "k")
	for _, req := range []*http.Request{unsigned, bad} {
		resp, err := Do(req)
		if err != nil || resp.StatusCode != 401 {
			t.Fatalf("%v %v", resp, err)
		}
	}
	if got := r.Requests(); len(got) != 2 || got[0].SignatureErr == nil || got[1].SignatureErr == nil || len(r.Delivered()) != 0 {
		t.Fatalf("requests %+v", got)
	}
}

func TestReceiverScript(t *testing.T) {
	r := NewReceiver(t)
	r.Script(Respond(500), RespondRetryAfter(429, "3"), RejectCredentials(), Close(), Delay(10*time.Millisecond))
	want := []struct {
		status     int
		retryAfter string
	}{{500, ""}, {429, "3"}, {401, ""}, {0, ""}, {200, ""}, {200, ""}}
	for i, w := range want {
		resp, err := Post(ctx(t), r.URL, "", []byte(`{}`), "")
		switch {
		case w.status == 0:
			if err == nil {
				t.Fatalf("step %d: answer %d after an abrupt close", i, resp.StatusCode)
			}
		case err != nil || resp.StatusCode != w.status || resp.Header.Get("Retry-After") != w.retryAfter:
			t.Fatalf("step %d: %+v %v, want %d %q", i, resp, err, w.status, w.retryAfter)
		}
	}
	var steps []string
	for _, q := range r.Requests() {
		steps = append(steps, q.Step)
	}
	if got := len(r.Delivered()); got != 2 {
		t.Fatalf("delivered %d; steps %q", got, steps)
	}
	if s := Blackhole().AfterDelivery().String(); s != "blackhole after delivery" {
		t.Fatalf("String %q", s)
	}
}

func TestBlackholeReleasedByClose(t *testing.T) {
	r := NewReceiver(t)
	r.Script(Blackhole())
	done := make(chan error, 1)
	go func() {
		_, err := Post(context.Background(), r.URL, "", []byte(`{}`), "")
		done <- err
	}()
	r.WaitRequests(t, 1, 5*time.Second)
	r.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("blackholed request got an answer")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not release the blackholed request")
	}
}

func TestRefusingURL(t *testing.T) {
	if _, err := Post(ctx(t), RefusingURL(t), "", []byte(`{}`), ""); err == nil {
		t.Fatal("connection to RefusingURL succeeded")
	}
}

func TestSignersMatchVerifier(t *testing.T) {
	body := []byte(`{"test": 2432232314}`)
	sig, err := SignStandard(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Unix(1614265330, 0), body)
	if err != nil || sig != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Fatalf("SignStandard(reference vector) = %q, %v", sig, err)
	}
	gh, _ := NewGitHubRequest(ctx(t), "http://127.0.0.1/", "s", body, "d")
	if gh.Header.Get("X-Hub-Signature-256") != SignGitHub("s", body) || gh.Header.Get("X-GitHub-Delivery") != "d" {
		t.Fatalf("headers %v", gh.Header)
	}
	if !bytes.Equal(Message{Text: "x"}.JSON(), []byte(`{"text":"x"}`)) {
		t.Fatal("Message.JSON")
	}
}

func TestFaultSteps(t *testing.T) {
	for _, tt := range []struct {
		f    fakeserver.Fault
		want string
	}{
		{fakeserver.Blackhole(), "blackhole"},
		{fakeserver.Drop(), "close"},
		{fakeserver.RateLimit(1, 7*time.Second), "respond 429 retry-after 7"},
		{fakeserver.Reject(503), "respond 503"},
		{fakeserver.Reject(503).WithRetryAfter(2 * time.Second), "respond 503 retry-after 2"},
	} {
		if got := Fault(tt.f).String(); got != tt.want {
			t.Errorf("Fault(%v) = %q, want %q", tt.f, got, tt.want)
		}
	}
}
