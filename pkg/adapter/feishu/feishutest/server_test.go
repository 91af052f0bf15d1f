// SPDX-License-Identifier: Apache-2.0

package feishutest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
	"github.com/heraldgw/herald/pkg/adapter/feishu/internal/pbbp2"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func bootstrap(t *testing.T, s *Server) (string, int) {
	t.Helper()
	body := `{"AppID":"cli_test","AppSecret":"test-secret"}`
	resp, err := http.Post(s.URL()+"/callback/ws/endpoint", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Code int `json:"code"`
		Data struct {
			URL          string       `json:"URL"`
			ClientConfig ClientConfig `json:"ClientConfig"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.Data.URL, out.Code
}

// TestProtocolRoundTrip drives the fake with a bare client: bootstrap,
// ping/pong with a config payload, a fragmented push acknowledged once.
func TestProtocolRoundTrip(t *testing.T) {
	s := New(t, Options{RedeliverAfter: -1})
	s.SetPongConfig(&ClientConfig{PingInterval: 5})
	u, code := bootstrap(t, s)
	if code != 0 || !strings.HasPrefix(u, "ws://127.0.0.1:") {
		t.Fatalf("bootstrap = %q, code %d", u, code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	ping := &pbbp2.Frame{Service: 7, Headers: []pbbp2.Header{{Key: "type", Value: "ping"}}}
	if err := c.Write(ctx, websocket.MessageBinary, ping.Marshal()); err != nil {
		t.Fatal(err)
	}
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pong, err := pbbp2.Unmarshal(b)
	if err != nil || pong.Type() != "pong" || !bytes.Contains(pong.Payload, []byte(`"PingInterval":5`)) {
		t.Fatalf("pong = %+v, %v", pong, err)
	}

	id := s.Push(Event{Text: "hello", Fragments: 3, Order: []int{2, 0, 1}})
	var payload []byte
	var last *pbbp2.Frame
	parts := map[string][]byte{}
	for range 3 {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		f, err := pbbp2.Unmarshal(b)
		if err != nil {
			t.Fatal(err)
		}
		parts[f.Header("seq")] = f.Payload
		last = f
	}
	payload = append(append(append(payload, parts["0"]...), parts["1"]...), parts["2"]...)
	if !json.Valid(payload) || !bytes.Contains(payload, []byte(id)) {
		t.Fatalf("reassembled payload %q", payload)
	}
	if last.Header("seq") != "1" {
		t.Errorf("fragments not sent in the requested order: last seq %s", last.Header("seq"))
	}
	last.Headers = append(last.Headers, pbbp2.Header{Key: "biz_rt", Value: "1"})
	last.Payload = []byte(`{"code":200,"headers":null,"data":null}`)
	if err := c.Write(ctx, websocket.MessageBinary, last.Marshal()); err != nil {
		t.Fatal(err)
	}
	acks := s.WaitAcks(t, 1, 5*time.Second)
	if acks[0].EventID != id || acks[0].Code != 200 {
		t.Fatalf("ack = %+v", acks[0])
	}
	c.Close(websocket.StatusNormalClosure, "")
	s.WaitCloseCodes(t, 1, 5*time.Second)
	if got := s.CloseCodes()[0]; got != websocket.StatusNormalClosure {
		t.Errorf("close code %v", got)
	}
}

func TestRedeliverUntilAcked(t *testing.T) {
	s := New(t, Options{RedeliverAfter: 50 * time.Millisecond})
	u, _ := bootstrap(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	id := s.Push(Event{Text: "x"})
	var ids []string
	for range 2 {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		f, _ := pbbp2.Unmarshal(b)
		ids = append(ids, f.Header("message_id"))
	}
	if ids[0] == ids[1] {
		t.Errorf("redelivery reused frame message_id %s", ids[0])
	}
	if n := s.Deliveries(id); n < 2 {
		t.Errorf("deliveries = %d", n)
	}
}

// TestCloseDoesNotHang closes the fake with a blackholed bootstrap, a
// blackholed upgrade and a frozen connection in flight.
func TestCloseDoesNotHang(t *testing.T) {
	s := New(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, 3)
	s.SetBootstrapMode(BootstrapBlackhole)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", s.URL()+"/callback/ws/endpoint", strings.NewReader(`{}`))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errs <- err
	}()
	s.WaitBootstraps(t, 1, 5*time.Second)
	s.Inject(Handshake, fakeserver.Blackhole())
	go func() {
		_, _, err := websocket.Dial(ctx, strings.Replace(s.URL(), "http", "ws", 1)+"/ws/v2?service_id=7&ticket=x", nil)
		errs <- err
	}()
	s.WaitWSAttempts(t, 1, 5*time.Second)
	s.Heal(Handshake)
	s.SetFreeze(true)
	c, _, err := websocket.Dial(ctx, strings.Replace(s.URL(), "http", "ws", 1)+"/ws/v2?service_id=7&ticket=x", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung")
	}
	for range 2 {
		<-errs
	}
	http.DefaultClient.CloseIdleConnections()
}

// TestMentions: the fake sees the mentions the platform would render, so
// that an adapter test can tell a neutralised tag from a live one.
func TestMentions(t *testing.T) {
	tests := []struct {
		text string
		want []string
	}{
		{`<at user_id="all"></at> hi`, []string{"all"}},
		{`<AT USER_ID="ou_1">Ann</AT> and <at id=ou_2></at>`, []string{"ou_1", "ou_2"}},
		{"<at\nemail=a@example.com></at>", []string{"a@example.com"}},
		{"\uFF1Cat user_id=\"all\"></at>", nil},
		{`<atom user_id="all">`, nil},
		{`plain <b>text</b>`, nil},
	}
	for _, tt := range tests {
		if got := mentions(tt.text); !slices.Equal(got, tt.want) {
			t.Errorf("mentions(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}
