// SPDX-License-Identifier: Apache-2.0

package slacktest

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func call(t *testing.T, s *Server, method, token, body string) (int, map[string]any) {
	t.Helper()
	return callAs(t, s, method, token, "application/json", body)
}

func callAs(t *testing.T, s *Server, method, token, ctype, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.APIURL()+"/"+method, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestAuth(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	defer http.DefaultClient.CloseIdleConnections()
	tests := []struct {
		method, token, want string
	}{
		{"apps.connections.open", "", "not_authed"},
		{"apps.connections.open", "xapp-wrong", "invalid_auth"},
		{"apps.connections.open", s.BotToken(), "not_allowed_token_type"},
		{"chat.postMessage", s.AppToken(), "not_allowed_token_type"},
		{"chat.postMessage", "xoxb-wrong", "invalid_auth"},
		{"chat.nope", s.BotToken(), "unknown_method"},
	}
	for _, tt := range tests {
		_, out := call(t, s, tt.method, tt.token, `{"channel":"C1","text":"x"}`)
		if out["ok"] != false || out["error"] != tt.want {
			t.Errorf("%s with %q: %v, want error %s", tt.method, tt.token, out, tt.want)
		}
	}
	if _, out := call(t, s, "apps.connections.open", s.AppToken(), ""); out["ok"] != true || !strings.HasPrefix(out["url"].(string), "ws://127.0.0.1:") {
		t.Errorf("apps.connections.open: %v", out)
	}
}

func TestFaultsAreUsedInOrder(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	defer http.DefaultClient.CloseIdleConnections()
	s.Inject(Post, fakeserver.RateLimit(1, 2*time.Second))
	s.Inject(Post, fakeserver.Reject(http.StatusOK).WithCode("channel_not_found").Times(1))
	if st, out := call(t, s, "chat.postMessage", s.BotToken(), `{"channel":"C1","text":"x"}`); st != 429 || out["error"] != "ratelimited" {
		t.Fatalf("first: %d %v", st, out)
	}
	if _, out := call(t, s, "chat.postMessage", s.BotToken(), `{"channel":"C1","text":"x"}`); out["error"] != "channel_not_found" {
		t.Fatalf("second: %v", out)
	}
	if _, out := call(t, s, "chat.postMessage", s.BotToken(), `{"channel":"C1","text":"x"}`); out["ok"] != true {
		t.Fatalf("third: %v", out)
	}
	if n := len(s.Messages()); n != 1 {
		t.Fatalf("%d messages recorded, want 1", n)
	}
}

// Close returns promptly with requests hanging in every black hole and a
// zombie websocket whose client never closes.
func TestCloseNeverHangs(t *testing.T) {
	s := New(Options{})
	client := &http.Client{}
	defer client.CloseIdleConnections()

	// A websocket turned zombie, with a client that keeps reading.
	_, out := call(t, s, "apps.connections.open", s.AppToken(), "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ws, _, err := websocket.Dial(ctx, out["url"].(string), &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			if _, _, err := ws.Read(ctx); err != nil {
				return
			}
		}
	}()
	s.WaitHellos(t, 1, 5*time.Second)
	s.Zombie()

	// Requests hanging in the black holes.
	s.Inject(Open, fakeserver.Blackhole())
	s.Inject(Post, fakeserver.Blackhole())
	calls := make(chan struct{}, 2)
	for _, m := range []string{"apps.connections.open", "chat.postMessage"} {
		go func() {
			defer func() { calls <- struct{}{} }()
			tok := s.BotToken()
			if m == "apps.connections.open" {
				tok = s.AppToken()
			}
			req, _ := http.NewRequest(http.MethodPost, s.APIURL()+"/"+m, strings.NewReader(`{"channel":"C1","text":"x"}`))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			if resp, err := client.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	hole, err := net.Dial("tcp", s.hole.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	s.WaitHoleConns(t, 1, 5*time.Second)
	s.WaitOpens(t, 2, 5*time.Second)
	s.WaitMessages(t, 1, 5*time.Second)

	done := make(chan struct{})
	start := time.Now()
	go func() {
		s.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close took %v", d)
	}
	<-calls
	<-calls
	cancel()
	<-readDone
}

func TestRedeliveryUntilAcked(t *testing.T) {
	s := New(Options{RedeliverAfter: 50 * time.Millisecond, MaxRetries: 2, PingInterval: time.Hour})
	defer s.Close()
	client := &http.Client{}
	defer client.CloseIdleConnections()
	_, out := call(t, s, "apps.connections.open", s.AppToken(), "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, out["url"].(string), &websocket.DialOptions{HTTPClient: client})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	read := func() map[string]any {
		t.Helper()
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := read(); m["type"] != "hello" {
		t.Fatalf("first frame %v", m)
	}
	p := s.PushEvent(Event{Channel: "D1", ChannelType: "im", User: "U1", Text: "hi"})
	first := read()
	second := read()
	third := read()
	if first["envelope_id"] != p.EnvelopeID || second["retry_attempt"] != float64(1) || third["retry_attempt"] != float64(2) || third["retry_reason"] != "timeout" {
		t.Fatalf("deliveries %v / %v / %v", first, second, third)
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"envelope_id":"`+third["envelope_id"].(string)+`"}`)); err != nil {
		t.Fatal(err)
	}
	a := s.WaitAck(t, p.EventID, 5*time.Second)
	if a.RetryAttempt != 2 || a.Conn != 1 {
		t.Fatalf("ack %+v", a)
	}
	if err := ws.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	if code := s.WaitClosed(t, 1, 5*time.Second); code != websocket.StatusNormalClosure {
		t.Fatalf("close status %v", code)
	}
}

func TestMentions(t *testing.T) {
	tests := []struct {
		text string
		want []string
	}{
		{"<!channel> <!here|here> <!everyone>", []string{"!channel", "!here", "!everyone"}},
		{"hi <@U123> and <@W9|ann> from <!subteam^S1|@team>", []string{"@U123", "@W9", "!subteam^S1"}},
		{"&lt;!channel&gt; &lt;@U123&gt; @channel @here", nil},
	}
	for _, tt := range tests {
		if got := (Message{Text: tt.text}).Mentions(); !slices.Equal(got, tt.want) {
			t.Errorf("Mentions(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}
