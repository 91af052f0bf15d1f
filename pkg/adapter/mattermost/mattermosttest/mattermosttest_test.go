// SPDX-License-Identifier: Apache-2.0

package mattermosttest

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func get(t *testing.T, s *Server, token, path string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestAuthRateLimitAndExpiry(t *testing.T) {
	s := New(t, DefaultToken)
	if r := get(t, s, "wrong", "/api/v4/users/me"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: HTTP %d", r.StatusCode)
	}
	s.RateLimit(1, "3", "7")
	r := get(t, s, DefaultToken, "/api/v4/users/me")
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") != "3" || r.Header.Get("X-Ratelimit-Reset") != "7" {
		t.Fatalf("rate limited: HTTP %d %v", r.StatusCode, r.Header)
	}
	if r := get(t, s, DefaultToken, "/api/v4/users/me"); r.StatusCode != http.StatusOK {
		t.Fatalf("after the limit: HTTP %d", r.StatusCode)
	}
	s.Expire()
	if r := get(t, s, DefaultToken, "/api/v4/users/me"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("expired token: HTTP %d", r.StatusCode)
	}
}

func TestWebsocketPostedAndSince(t *testing.T) {
	s := New(t, DefaultToken)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/api/v4/websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	_ = ws.Write(ctx, websocket.MessageText, []byte(`{"seq":1,"action":"authentication_challenge","data":{"token":"`+DefaultToken+`"}}`))
	var frames []map[string]any
	read := func() map[string]any {
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		frames = append(frames, m)
		return m
	}
	if m := read(); m["status"] != "OK" || m["seq_reply"] != float64(1) {
		t.Fatalf("challenge answer %v", m)
	}
	if m := read(); m["event"] != "hello" {
		t.Fatalf("no hello: %v", m)
	}
	s.Wait(t, 10*time.Second, "connection", func() bool { return s.Connections() == 1 })
	p := s.PostTwice("town", "ann", "hi")
	for range 2 {
		m := read()
		data := m["data"].(map[string]any)
		var got Post
		if err := json.Unmarshal([]byte(data["post"].(string)), &got); err != nil || got.ID != p.ID || data["channel_type"] != "O" {
			t.Fatalf("posted event %v", m)
		}
	}
	r := get(t, s, DefaultToken, "/api/v4/channels/town/posts?since=0")
	var list struct {
		Order []string        `json:"order"`
		Posts map[string]Post `json:"posts"`
	}
	_ = json.NewDecoder(r.Body).Decode(&list)
	if len(list.Order) != 1 || list.Posts[p.ID].Message != "hi" {
		t.Fatalf("since: %+v", list)
	}
}
