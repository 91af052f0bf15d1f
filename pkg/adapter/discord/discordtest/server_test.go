// SPDX-License-Identifier: Apache-2.0

package discordtest

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func dial(t *testing.T, s *Server) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, s.GatewayURL+"/?v=10&encoding=json", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func read(t *testing.T, c *websocket.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func write(t *testing.T, c *websocket.Conn, s string) {
	t.Helper()
	if err := c.Write(context.Background(), websocket.MessageText, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

func TestSessionAndResume(t *testing.T) {
	s := New(t, Options{HeartbeatInterval: time.Second})
	c := dial(t, s)
	if m := read(t, c); m["op"] != 10.0 {
		t.Fatalf("first frame %v, want Hello", m)
	}
	write(t, c, `{"op":2,"d":{"token":"`+s.Token+`","intents":513}}`)
	ready := read(t, c)
	if ready["t"] != "READY" || ready["s"] != 1.0 {
		t.Fatalf("after Identify: %v", ready)
	}
	s.PushMessage(Msg{Content: "one"})
	if m := read(t, c); m["t"] != "MESSAGE_CREATE" || m["s"] != 2.0 {
		t.Fatalf("event %v", m)
	}
	write(t, c, `{"op":1,"d":2}`)
	if m := read(t, c); m["op"] != 11.0 {
		t.Fatalf("heartbeat answer %v", m)
	}
	if err := s.Drop(); err != nil {
		t.Fatal(err)
	}
	s.Await(t, "connection gone", 5*time.Second, func() bool { return !s.Live() })
	s.PushMessage(Msg{Content: "two"})

	c2 := dial(t, s)
	read(t, c2)
	write(t, c2, `{"op":6,"d":{"token":"`+s.Token+`","session_id":"fake-session-1","seq":1}}`)
	var got []string
	for {
		m := read(t, c2)
		got = append(got, m["t"].(string))
		if m["t"] == "RESUMED" {
			break
		}
	}
	if strings.Join(got, ",") != "MESSAGE_CREATE,MESSAGE_CREATE,RESUMED" {
		t.Fatalf("replay %v", got)
	}
	if r := s.Resumes(); len(r) != 1 || r[0].Seq != 1 {
		t.Fatalf("resumes %+v", r)
	}
}

// TestSessionSurvivesClientClose: a client that closes with 4000 leaves
// its session resumable from a new connection; 1000 and ExpireSessions end
// it.
func TestSessionSurvivesClientClose(t *testing.T) {
	for _, tc := range []struct {
		name      string
		code      websocket.StatusCode
		expire    bool
		resumable bool
	}{
		{"close 4000", 4000, false, true},
		{"close 1000", websocket.StatusNormalClosure, false, false},
		{"close 4000, expired", 4000, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(t, Options{})
			c := dial(t, s)
			read(t, c)
			write(t, c, `{"op":2,"d":{"token":"`+s.Token+`","intents":513}}`)
			read(t, c) // READY
			if got := s.SessionID(); got != "fake-session-1" {
				t.Fatalf("SessionID %q", got)
			}
			if err := c.Close(tc.code, "bye"); err != nil {
				t.Fatal(err)
			}
			s.Await(t, "close recorded", 5*time.Second, func() bool { return len(s.ClientCloses()) == 1 })
			if tc.expire {
				s.ExpireSessions()
			}
			s.PushMessage(Msg{Content: "while away"})

			c2 := dial(t, s)
			read(t, c2)
			write(t, c2, `{"op":6,"d":{"token":"`+s.Token+`","session_id":"fake-session-1","seq":1}}`)
			m := read(t, c2)
			if !tc.resumable {
				if m["op"] != 9.0 || m["d"] != false {
					t.Fatalf("resume of an ended session answered %v, want op 9 false", m)
				}
				return
			}
			if m["t"] != "MESSAGE_CREATE" || m["s"] != 2.0 {
				t.Fatalf("replay %v", m)
			}
			if m := read(t, c2); m["t"] != "RESUMED" {
				t.Fatalf("after replay %v", m)
			}
		})
	}
}

func TestCloseNeverHangs(t *testing.T) {
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Inject(REST, fakeserver.Blackhole())
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(s.APIURL + "/gateway/bot")
		if err == nil {
			resp.Body.Close()
		}
	}()
	s.Await(t, "blackholed request", 5*time.Second, func() bool { return s.GatewayRequests() == 1 })
	c := dial(t, s)
	read(t, c)
	if err := s.Deafen(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	<-done
	s.Close() // idempotent
}

func TestRESTAuthAndDedupe(t *testing.T) {
	s := New(t, Options{})
	post := func(auth, body string) int {
		req, _ := http.NewRequest("POST", s.APIURL+"/channels/5/messages", strings.NewReader(body))
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := post("Bot wrong", `{"content":"x"}`); st != 401 {
		t.Fatalf("bad token: %d", st)
	}
	for range 2 {
		if st := post("Bot "+s.Token, `{"content":"x","nonce":"n1","enforce_nonce":true}`); st != 200 {
			t.Fatalf("create: %d", st)
		}
	}
	if st := post("Bot "+s.Token, `{"content":"x","nonce":"n1"}`); st != 200 {
		t.Fatal("create without enforce")
	}
	if n := len(s.Messages()); n != 2 {
		t.Fatalf("%d messages, want 2 (one deduped)", n)
	}
	http.DefaultClient.CloseIdleConnections()
}
