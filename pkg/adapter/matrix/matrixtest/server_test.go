// SPDX-License-Identifier: Apache-2.0

package matrixtest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func call(t *testing.T, s *Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+"/_matrix/client/v3/"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: %v: %s", method, path, err, b)
	}
	return resp.StatusCode, m
}

const filter = "filter=%7B%7D"

func TestFake(t *testing.T) {
	s := New(t)
	code, m := call(t, s, "GET", "sync?"+filter+"&timeout=0", "")
	if code != 200 || m["next_batch"] != "s0" {
		t.Fatalf("initial sync: %d %v", code, m)
	}
	id := s.Text("!r:fake.test", "@ann:fake.test", "hi")
	code, m = call(t, s, "GET", "sync?"+filter+"&timeout=0&since=s0", "")
	if code != 200 || m["next_batch"] != "s1" || !strings.Contains(mustJSON(t, m), id) {
		t.Fatalf("sync: %d %v", code, m)
	}

	// Redelivery: the batch is served twice.
	s.Redeliver()
	id2 := s.Text("!r:fake.test", "@ann:fake.test", "again")
	// The batch (s1, s2] is served, then served again to the sync that
	// asks from s2, and then no more.
	for i, since := range []string{"s1", "s2"} {
		if _, m = call(t, s, "GET", "sync?"+filter+"&timeout=0&since="+since, ""); !strings.Contains(mustJSON(t, m), id2) {
			t.Fatalf("delivery %d: %v", i+1, m)
		}
	}
	if n := s.Served(id2); n != 2 {
		t.Fatalf("served %d times, want 2", n)
	}
	if _, m = call(t, s, "GET", "sync?"+filter+"&timeout=0&since=s2", ""); strings.Contains(mustJSON(t, m), id2) {
		t.Fatalf("served a third time: %v", m)
	}

	// Sends are deduplicated by transaction id.
	_, a := call(t, s, "PUT", "rooms/%21r:fake.test/send/m.room.message/txn1", `{"msgtype":"m.text","body":"x"}`)
	_, b := call(t, s, "PUT", "rooms/%21r:fake.test/send/m.room.message/txn1", `{"msgtype":"m.text","body":"x"}`)
	if a["event_id"] != b["event_id"] || len(s.Sent()) != 1 || s.Puts("txn1") != 2 {
		t.Fatalf("send not deduplicated: %v %v %d", a, b, len(s.Sent()))
	}

	// 429 with retry_after_ms, then served.
	s.RateLimit("send", 1500)
	code, m = call(t, s, "PUT", "rooms/%21r:fake.test/send/m.room.message/txn2", `{"msgtype":"m.text","body":"y"}`)
	if code != 429 || m["errcode"] != "M_LIMIT_EXCEEDED" || m["retry_after_ms"] != 1500.0 {
		t.Fatalf("rate limit: %d %v", code, m)
	}

	// A held send is stored but never answered.
	s.HoldSends(true)
	req, _ := http.NewRequest("PUT", s.URL+"/_matrix/client/v3/rooms/%21r:fake.test/send/m.room.message/txn3", strings.NewReader(`{"msgtype":"m.text","body":"held"}`))
	req.Header.Set("Authorization", "Bearer "+s.Token)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if resp, err := http.DefaultClient.Do(req.WithContext(ctx)); err == nil {
		resp.Body.Close()
		t.Fatal("a held send was answered")
	}
	if s.HeldSends() != 1 || len(s.Sent()) != 2 || s.Sent()[1].Body() != "held" {
		t.Fatalf("held %d, sent %+v", s.HeldSends(), s.Sent())
	}
	s.HoldSends(false)

	// An expired token.
	s.Expire()
	code, m = call(t, s, "GET", "account/whoami", "")
	if code != 401 || m["errcode"] != "M_UNKNOWN_TOKEN" {
		t.Fatalf("expired: %d %v", code, m)
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
