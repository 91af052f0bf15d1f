// SPDX-License-Identifier: Apache-2.0

package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/webhook"
	"github.com/heraldgw/herald/pkg/adapter/webhook/webhooktest"
	"github.com/heraldgw/herald/pkg/message"
)

// FuzzHandler feeds arbitrary bodies and headers to the inbound handler.
// With valid=true the request is correctly signed (Standard Webhooks) so
// the fuzzer gets past verification into parsing. The seed corpus runs as
// part of `go test`; `go test -fuzz FuzzHandler` explores further.
//
// Invariants: no panic; a known status; a JSON answer; 202 exactly when
// the inbox stored a valid message whose event id is the answered id.
func FuzzHandler(f *testing.F) {
	seeds := []struct {
		body              string
		id, ts, sig, ghub string
		valid             bool
	}{
		{body: string(hello), id: "msg_1", valid: true},
		{body: `{"conversation_id":"c","user_id":"u","text":"t","chat_type":"group","thread_id":"x","user_name":"n"}`, valid: true},
		{body: `{"conversation_id":"c","user_id":"u","text":"t","reply_url":"https://ok.example.com/r/1"}`, id: "m", valid: true},
		{body: `{"conversation_id":"c","user_id":"u","text":"t","reply_url":"https://evil.example.com/"}`, valid: true},
		{body: `{"conversation_id":"c","user_id":"u","text":"t","reply_url":"http://[::1"}`, valid: true},
		{body: `{"conversation_id":"c","user_id":"u","text":"\ud800"}`, valid: true},
		{body: `{"conversation_id":{},"user_id":[],"text":null}`, valid: true},
		{body: `{"conversation_id":"c","user_id":"u","text":"t"}{}`, valid: true},
		{body: `[]`, valid: true},
		{body: `"`, valid: true},
		{body: ``, valid: true},
		{body: "\x00\xff", valid: true},
		{body: `{"conversation_id":"c","user_id":"u","text":"t"}`, id: strings.Repeat("i", 300), valid: true},
		{body: `{"conversation_id":"c","user_id":"u","text":"t"}`, id: "a\x01b", valid: true},
		{body: string(hello), id: "msg_1", ts: "1", sig: "v1,AAAA"},
		{body: string(hello), id: "msg_1", ts: "99999999999999999999", sig: "v1,===="},
		{body: string(hello), sig: "v1," + strings.Repeat("A", 1000)},
		{body: string(hello), sig: "v1a,xyz v2,abc ,,, v1"},
		{body: string(hello), ghub: "sha256=zz"},
		{body: string(hello), ghub: "sha256=" + strings.Repeat("0", 64)},
		{body: string(hello), ghub: "sha512="},
		{body: string(hello)},
	}
	for _, s := range seeds {
		f.Add([]byte(s.body), s.id, s.ts, s.sig, s.ghub, s.valid)
	}

	c := webhook.NewConfig()
	c.Secret = secretFile(f, testSecret)
	c.ReplyURLAllow = []string{"https://ok.example.com/r/"}
	c.MaxBodyBytes = 4096
	// Not adaptertest.Env: its logger writes to f, which the fuzz target
	// may not use. Debug level keeps the logging paths exercised.
	log := logrus.New()
	log.SetOutput(io.Discard)
	log.SetLevel(logrus.DebugLevel)
	env := adapter.Env{Name: "hooks", Log: logrus.NewEntry(log), Report: func(adapter.Status) {}, Metrics: adapter.NopMetrics{}}
	a, err := webhook.New(c, env)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = a.Stop(context.Background()) })
	var stored *message.Inbound
	inbox := adapter.InboxFunc(func(_ context.Context, m *message.Inbound) error {
		if err := m.Validate(); err != nil {
			return err
		}
		stored = m
		return nil
	})
	if err := a.Start(context.Background(), inbox); err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, body []byte, id, ts, sig, ghub string, valid bool) {
		stored = nil
		req := httptest.NewRequest(http.MethodPost, "/hooks/hooks", bytes.NewReader(body))
		set := func(k, v string) {
			if v != "" && validHeaderValue(v) {
				req.Header.Set(k, v)
			}
		}
		if valid {
			if id == "" || !validHeaderValue(id) {
				id = "msg_fuzz"
			}
			ts = strconv.FormatInt(time.Now().Unix(), 10)
			sig, _ = webhooktest.SignStandard(testSecret, id, time.Now(), body)
		}
		set("webhook-id", id)
		set("webhook-timestamp", ts)
		set("webhook-signature", sig)
		set("X-Hub-Signature-256", ghub)
		w := httptest.NewRecorder()
		a.ServeHTTP(w, req)

		switch w.Code {
		case 202, 400, 401, 413:
		default:
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		var answer struct {
			ID    string `json:"id"`
			Error string `json:"error"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil {
			t.Fatalf("answer is not JSON: %q", w.Body)
		}
		if (w.Code == 202) != (stored != nil) {
			t.Fatalf("status %d but stored=%v", w.Code, stored != nil)
		}
		if stored == nil {
			if answer.Error == "" {
				t.Fatalf("rejection without an error text: %q", w.Body)
			}
			return
		}
		if answer.ID != stored.EventID || stored.MessageID != stored.EventID || stored.Platform != "hooks" {
			t.Fatalf("answered id %q, stored %+v", answer.ID, stored)
		}
		if u := stored.Meta[webhook.MetaReplyURL]; u != "" && !strings.HasPrefix(u, "https://ok.example.com/r/") {
			t.Fatalf("reply_url %q passed the allow list", u)
		}
		if !valid && sig == "" && ghub == "" {
			t.Fatal("unsigned request stored")
		}
	})
}

// validHeaderValue mirrors what net/http would let a client send.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
