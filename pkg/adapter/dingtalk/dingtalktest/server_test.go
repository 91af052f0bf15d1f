// SPDX-License-Identifier: Apache-2.0

package dingtalktest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func open(t *testing.T, s *Server, secret string) (int, map[string]string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{
		"clientId": DefaultClientID, "clientSecret": secret,
		"subscriptions": []map[string]string{{"type": "CALLBACK", "topic": "/v1.0/im/bot/messages/get"}},
	})
	resp, err := http.Post(s.URL+"/v1.0/gateway/connections/open", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestStreamProtocol(t *testing.T) {
	s := New(t, Options{})
	if code, out := open(t, s, "wrong"); code != 401 || out["code"] != "InvalidAuthentication" {
		t.Fatalf("wrong secret: %d %v", code, out)
	}
	code, ep := open(t, s, DefaultClientSecret)
	if code != 200 || ep["endpoint"] == "" || ep["ticket"] == "" {
		t.Fatalf("open: %d %v", code, ep)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	u := ep["endpoint"] + "?ticket=" + ep["ticket"]
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, _, err := websocket.Dial(ctx, u, nil); err == nil {
		t.Fatal("a used ticket was accepted")
	}
	id := s.Push(Msg{MsgID: "m1", Text: "hi"})
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Type    string            `json:"type"`
		Headers map[string]string `json:"headers"`
		Data    string            `json:"data"`
	}
	if err := json.Unmarshal(b, &f); err != nil || f.Type != "CALLBACK" || f.Headers["messageId"] != id ||
		f.Headers["topic"] != "/v1.0/im/bot/messages/get" {
		t.Fatalf("frame %s: %v", b, err)
	}
	var data map[string]any
	if err := json.Unmarshal([]byte(f.Data), &data); err != nil || data["msgId"] != "m1" {
		t.Fatalf("data %s: %v", f.Data, err)
	}
	if s.Pending() != 1 {
		t.Fatal("frame not pending before its ack")
	}
	ack, _ := json.Marshal(map[string]any{"code": 200, "headers": map[string]string{"contentType": "application/json", "messageId": id}, "message": "OK", "data": `{"response":null}`})
	if err := c.Write(ctx, websocket.MessageText, ack); err != nil {
		t.Fatal(err)
	}
	s.Await(t, "ack", 10*time.Second, func(s *Server) bool { return s.Acked(id) && s.Pending() == 0 })
}
