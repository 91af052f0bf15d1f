// SPDX-License-Identifier: Apache-2.0

package signaltest

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

const acct = "+15550100"

// open opens the event stream with lastID (none when nil) and returns a
// function reading the next non-empty line.
func open(t *testing.T, s *Server, lastID *string, query string) (*http.Response, func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/v1/events"+query, nil)
	if lastID != nil {
		req.Header.Set("Last-Event-ID", *lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if sc.Text() != "" {
				lines <- sc.Text()
			}
		}
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	return resp, func() string {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("stream ended")
			}
			return l
		case <-time.After(5 * time.Second):
			t.Fatal("no line within 5s")
			return ""
		}
	}
}

func TestEventsAndReplay(t *testing.T) {
	s := New(t, acct)
	first := s.Push(s.Message("one"))
	second := s.Push(s.Message("two"))
	if !strings.HasSuffix(first, "-1") || !strings.HasSuffix(second, "-2") {
		t.Fatalf("ids %q %q", first, second)
	}
	// No Last-Event-ID: only new events.
	resp, next := open(t, s, nil, "")
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	s.Wait(t, 5*time.Second, "the stream", func() bool { return s.Opened() == 1 })
	third := s.Push(s.Message("three"))
	if l := next(); l != "id:"+third {
		t.Fatalf("first line %q, want the new event's id", l)
	}
	if l := next(); l != "event:receive" {
		t.Fatalf("line %q", l)
	}
	var r struct {
		Envelope struct {
			SourceNumber string
			DataMessage  struct{ Message string }
		}
		Account string
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(next(), "data:")), &r); err != nil || r.Envelope.DataMessage.Message != "three" || r.Account != acct {
		t.Fatalf("data %+v, %v", r, err)
	}
	// Last-Event-ID: the kept events after it.
	_, next = open(t, s, &first, "")
	if l := next(); l != "id:"+second {
		t.Fatalf("after %q the stream starts with %q, want %q", first, l, second)
	}
	// Unknown id: every kept event.
	unknown := "1-1"
	_, next = open(t, s, &unknown, "")
	if l := next(); l != "id:"+first {
		t.Fatalf("an unknown id starts with %q, want %q", l, first)
	}
	if got := s.LastEventIDs(); len(got) != 3 || got[0] != "" || got[1] != first || got[2] != unknown {
		t.Errorf("LastEventIDs %q", got)
	}
}

func TestKeepAliveAndBlackhole(t *testing.T) {
	s := New(t, acct)
	s.SetKeepAlive(10 * time.Millisecond)
	_, next := open(t, s, nil, "")
	if l := next(); l != ":" {
		t.Fatalf("line %q, want the keepalive", l)
	}
	s.Blackhole()
	s.Push(s.Message("lost in the hole"))
	// The stream took the event and dropped it instead of writing it.
	s.Wait(t, 5*time.Second, "the event dropped", func() bool { return s.Dropped() == 1 })
}

func TestRPC(t *testing.T) {
	s := New(t, acct)
	post := func(ct, body string) (*http.Response, map[string]any) {
		t.Helper()
		resp, err := http.Post(s.URL+"/api/v1/rpc", ct, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp, m
	}
	if resp, _ := post("text/plain", `{}`); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain: %d, want 415", resp.StatusCode)
	}
	_, m := post("application/json", `{"jsonrpc":"2.0","method":"send","id":4,"params":{"recipient":["+15550001"],"message":"hi"}}`)
	res, _ := m["result"].(map[string]any)
	if res["timestamp"] == nil || m["id"] != float64(4) {
		t.Fatalf("answer %v", m)
	}
	s.Script(Reply{Code: -5, Message: "rate limited"})
	_, m = post("application/json", `{"jsonrpc":"2.0","method":"send","id":"x","params":{"groupId":"g","message":"hi"}}`)
	if e, _ := m["error"].(map[string]any); e["code"] != float64(-5) {
		t.Fatalf("answer %v", m)
	}
	_, m = post("application/json", `{"jsonrpc":"2.0","method":"send","id":"y","params":{"message":"hi"}}`)
	if e, _ := m["error"].(map[string]any); e["code"] != float64(-1) {
		t.Fatalf("send without recipient answered %v", m)
	}
	if got := s.Sent(); len(got) != 1 || got[0].Recipient[0] != "+15550001" {
		t.Errorf("Sent %+v", got)
	}
}

func TestAccountCheckAndDown(t *testing.T) {
	s := New(t, acct)
	resp, err := http.Get(s.URL + "/api/v1/events?account=%2B1999")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown account: %d, want 400", resp.StatusCode)
	}
	resp, err = http.Get(s.URL + "/api/v1/check")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("check: %d", resp.StatusCode)
	}
	s.Down()
	if _, err := http.Get(s.URL + "/api/v1/check"); err == nil {
		t.Error("a daemon that is down answered")
	}
	s.Up()
	resp, err = http.Get(s.URL + "/api/v1/check")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}
