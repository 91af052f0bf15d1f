// SPDX-License-Identifier: Apache-2.0

package telegramtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type envelope struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result"`
	ErrorCode   int             `json:"error_code"`
	Description string          `json:"description"`
	Parameters  struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
}

func call(t *testing.T, ctx context.Context, s *Server, method, ctype string, body io.Reader) (int, envelope) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/bot"+s.Token+"/"+method, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	var env envelope
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		t.Fatalf("%s: decode: %v", method, err)
	}
	return resp.StatusCode, env
}

func callJSON(t *testing.T, s *Server, method string, params any) (int, envelope) {
	t.Helper()
	b, _ := json.Marshal(params)
	return call(t, context.Background(), s, method, "application/json", bytes.NewReader(b))
}

func TestEncodings(t *testing.T) {
	s := New(t, "")
	t.Cleanup(http.DefaultClient.CloseIdleConnections)

	callJSON(t, s, "sendMessage", map[string]any{"chat_id": 5, "text": "json", "reply_parameters": map[string]any{"message_id": 9, "allow_sending_without_reply": true}})
	form := url.Values{"chat_id": {"5"}, "text": {"form"}, "reply_parameters": {`{"message_id":10}`}}
	call(t, context.Background(), s, "sendMessage", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	_ = mw.WriteField("chat_id", "5")
	_ = mw.WriteField("text", "multipart")
	_ = mw.WriteField("message_thread_id", "77")
	_ = mw.Close()
	call(t, context.Background(), s, "sendMessage", mw.FormDataContentType(), &mp)
	q := url.Values{"chat_id": {"5"}, "text": {"query"}}
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/bot"+s.Token+"/sendMessage?"+q.Encode(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	got := s.Transcript("5")
	want := []string{"json", "form", "multipart", "query"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("transcript %q, want %q", got, want)
	}
	sent := s.Sent()
	if sent[0].ReplyTo != 9 || !sent[0].AllowSendingWithoutReply || sent[1].ReplyTo != 10 || sent[2].ThreadID != 77 {
		t.Fatalf("reply/thread params not recorded: %+v", sent)
	}
	encs := []string{}
	for _, r := range s.Requests("sendMessage") {
		encs = append(encs, r.Encoding)
	}
	if strings.Join(encs, ",") != "json,form,multipart,query" {
		t.Fatalf("encodings %v", encs)
	}
}

func TestErrors(t *testing.T) {
	s := New(t, "")
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	tests := []struct {
		name   string
		method string
		params map[string]any
		code   int
		desc   string
	}{
		{"too long", "sendMessage", map[string]any{"chat_id": 1, "text": strings.Repeat("😀", 2049)}, 400, MessageTooLong},
		{"empty", "sendMessage", map[string]any{"chat_id": 1, "text": " "}, 400, TextEmpty},
		{"unknown method", "frobnicate", nil, 404, "Not Found"},
		{"edit missing", "editMessageText", map[string]any{"chat_id": 1, "message_id": 999, "text": "x"}, 400, "Bad Request: message to edit not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, env := callJSON(t, s, tc.method, tc.params)
			if code != tc.code || env.ErrorCode != tc.code || env.Description != tc.desc || env.OK {
				t.Fatalf("got %d %+v, want %d %q", code, env, tc.code, tc.desc)
			}
		})
	}
	// Exactly 4096 UTF-16 units passes.
	if code, _ := callJSON(t, s, "sendMessage", map[string]any{"chat_id": 1, "text": strings.Repeat("😀", 2048)}); code != 200 {
		t.Fatalf("4096 units refused: %d", code)
	}
	// Wrong token.
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/bot1:wrong/getMe", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("wrong token: %d", resp.StatusCode)
	}
	// Scripts are one-shot, Always sticks.
	s.Script("getMe", RetryAfter(3))
	s.Always("sendChatAction", Conflict())
	if code, env := callJSON(t, s, "getMe", nil); code != 429 || env.Parameters.RetryAfter != 3 {
		t.Fatalf("scripted 429: %d %+v", code, env)
	}
	if code, _ := callJSON(t, s, "getMe", nil); code != 200 {
		t.Fatalf("script not consumed: %d", code)
	}
	for range 2 {
		if code, _ := callJSON(t, s, "sendChatAction", map[string]any{"chat_id": 1, "action": "typing"}); code != 409 {
			t.Fatalf("always: %d", code)
		}
	}
	s.Clear("sendChatAction")
	if code, _ := callJSON(t, s, "sendChatAction", map[string]any{"chat_id": 1, "action": "typing"}); code != 200 {
		t.Fatalf("cleared: %d", code)
	}
}

func TestGetUpdatesOffsetAndHold(t *testing.T) {
	s := New(t, "")
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	id1 := s.PushText(Chat{ID: 5, Type: "private"}, User{ID: 5, FirstName: "A"}, "one")
	id2 := s.PushText(Chat{ID: 5, Type: "private"}, User{ID: 5, FirstName: "A"}, "two")

	_, env := callJSON(t, s, "getUpdates", map[string]any{"timeout": 0})
	var ups []Update
	_ = json.Unmarshal(env.Result, &ups)
	if len(ups) != 2 || ups[0].UpdateID != id1 || ups[1].UpdateID != id2 {
		t.Fatalf("updates %+v", ups)
	}
	// Not confirmed yet: asked again without offset, both come back.
	_, env = callJSON(t, s, "getUpdates", map[string]any{"timeout": 0})
	_ = json.Unmarshal(env.Result, &ups)
	if len(ups) != 2 {
		t.Fatalf("redelivery: %d updates", len(ups))
	}
	// offset confirms id1 only.
	_, env = callJSON(t, s, "getUpdates", map[string]any{"offset": id2, "timeout": 0})
	_ = json.Unmarshal(env.Result, &ups)
	if len(ups) != 1 || ups[0].UpdateID != id2 || s.Confirmed() != id2 || s.Pending() != 1 {
		t.Fatalf("after offset %d: %+v confirmed %d pending %d", id2, ups, s.Confirmed(), s.Pending())
	}

	// A poll with nothing pending holds until an update arrives.
	done := make(chan []Update, 1)
	go func() {
		_, env := callJSON(t, s, "getUpdates", map[string]any{"offset": id2 + 1, "timeout": 30})
		var ups []Update
		_ = json.Unmarshal(env.Result, &ups)
		done <- ups
	}()
	s.Wait(t, 5*time.Second, "poll held", func() bool { return s.Held() == 1 })
	id3 := s.PushText(Chat{ID: 5, Type: "private"}, User{ID: 5, FirstName: "A"}, "three")
	select {
	case ups := <-done:
		if len(ups) != 1 || ups[0].UpdateID != id3 || ups[0].Message.Text != "three" {
			t.Fatalf("held poll got %+v", ups)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("held poll not answered after push")
	}

	// A short timeout answers with an empty list.
	_, env = callJSON(t, s, "getUpdates", map[string]any{"offset": id3 + 1, "timeout": 1})
	if !env.OK || string(env.Result) != "[]" {
		t.Fatalf("timeout answer %+v", env)
	}

	// A negative offset is recorded (herald must never use one).
	callJSON(t, s, "getUpdates", map[string]any{"offset": -1, "timeout": 0})
	if !s.NegativeOffsetSeen() {
		t.Fatal("negative offset not recorded")
	}
}

func TestNewerPollTerminatesOlder(t *testing.T) {
	s := New(t, "")
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	done := make(chan int, 1)
	go func() {
		code, _ := callJSON(t, s, "getUpdates", map[string]any{"timeout": 30})
		done <- code
	}()
	s.Wait(t, 5*time.Second, "poll held", func() bool { return s.Held() == 1 })
	if code, _ := callJSON(t, s, "getUpdates", map[string]any{"timeout": 0}); code != 200 {
		t.Fatalf("newer poll: %d", code)
	}
	if code := <-done; code != 409 {
		t.Fatalf("older poll: %d, want 409", code)
	}
	if got := s.MaxPollers(); got != 2 {
		t.Fatalf("MaxPollers = %d after two overlapping polls, want 2", got)
	}
	s.Wait(t, 5*time.Second, "no poller", func() bool { return s.Pollers() == 0 })
}

// TestMaxPollersOneClient: overlapping polls that carry the same
// ClientHeader are one poller; another client's poll makes two.
func TestMaxPollersOneClient(t *testing.T) {
	s := New(t, "")
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	poll := func(client string, timeout int) chan int {
		done := make(chan int, 1)
		go func() {
			req, _ := http.NewRequest(http.MethodPost, s.URL+"/bot"+s.Token+"/getUpdates", strings.NewReader(fmt.Sprintf(`{"timeout":%d}`, timeout)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(ClientHeader, client)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- 0
				return
			}
			resp.Body.Close()
			done <- resp.StatusCode
		}()
		return done
	}
	older := poll("node-a", 30)
	s.Wait(t, 5*time.Second, "poll held", func() bool { return s.Held() == 1 })
	if code := <-poll("node-a", 0); code != 200 {
		t.Fatalf("newer poll: %d", code)
	}
	<-older
	if got := s.MaxPollers(); got != 1 {
		t.Fatalf("MaxPollers = %d for one client, want 1", got)
	}
	older = poll("node-a", 30)
	s.Wait(t, 5*time.Second, "poll held", func() bool { return s.Held() == 1 })
	if code := <-poll("node-b", 0); code != 200 {
		t.Fatalf("other client's poll: %d", code)
	}
	<-older
	if got := s.MaxPollers(); got != 2 {
		t.Fatalf("MaxPollers = %d for two clients, want 2", got)
	}
}

// TestMaxPollersSequential: polls one after the other, as a single
// client makes them, never count as two pollers.
func TestMaxPollersSequential(t *testing.T) {
	s := New(t, "")
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	for i := 0; i < 3; i++ {
		if code, _ := callJSON(t, s, "getUpdates", map[string]any{"timeout": 0}); code != 200 {
			t.Fatalf("poll %d: %d", i, code)
		}
	}
	if got := s.MaxPollers(); got != 1 {
		t.Fatalf("MaxPollers = %d after sequential polls, want 1", got)
	}
}

func TestClientGoneReleasesPoll(t *testing.T) {
	s := New(t, "")
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/bot"+s.Token+"/getUpdates",
			strings.NewReader(`{"timeout":30}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	s.Wait(t, 5*time.Second, "poll held", func() bool { return s.Held() == 1 })
	cancel()
	<-errc
	// Because the body was drained, the handler sees the client leave.
	s.Wait(t, 5*time.Second, "poll released", func() bool { return s.Held() == 0 })
}

func TestCloseDoesNotHang(t *testing.T) {
	s := New(t, "")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	s.Script("getMe", Blackhole())
	errs := make(chan error, 2)
	for _, body := range []string{`{"timeout":60}`, `{}`} {
		method := "getUpdates"
		if body == "{}" {
			method = "getMe"
		}
		go func() {
			req, _ := http.NewRequest(http.MethodPost, s.URL+"/bot"+s.Token+"/"+method, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			errs <- err
		}()
	}
	s.Wait(t, 5*time.Second, "poll held and getMe blackholed", func() bool { return s.Held() == 1 && s.Blackholed() == 1 })
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close took %v", d)
	}
	for range 2 {
		if err := <-errs; err == nil {
			t.Error("request answered normally after Close; want a broken connection")
		}
	}
}

func TestAbortAndRefuse(t *testing.T) {
	s := New(t, "")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	post := func() error {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/bot"+s.Token+"/getMe", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	s.Script("getMe", Abort())
	if err := post(); err == nil {
		t.Fatal("abort: request succeeded")
	}
	s.Refuse()
	if err := post(); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("refuse: %v", err)
	}
	if err := s.Accept(); err != nil {
		t.Fatal(err)
	}
	if err := post(); err != nil {
		t.Fatalf("after Accept: %v", err)
	}
}

func TestFaultReplies(t *testing.T) {
	if r := Fault(fakeserver.RateLimit(1, 3*time.Second)); r.Status != 429 || !strings.Contains(r.Body, `"retry_after":3`) {
		t.Errorf("RateLimit: %+v", r)
	}
	if r := Fault(fakeserver.Reject(403).WithCode("Forbidden: bot was blocked by the user")); r != Blocked() {
		t.Errorf("Reject(403) with a code: %+v, want %+v", r, Blocked())
	}
	if r := Fault(fakeserver.Reject(502)); r.Status != 502 || !strings.Contains(r.Body, `"description":"Bad Gateway"`) {
		t.Errorf("Reject(502): %+v", r)
	}
	if !Fault(fakeserver.Blackhole()).Blackhole || !Fault(fakeserver.Drop()).Abort {
		t.Error("Blackhole or Drop not mapped")
	}
}
