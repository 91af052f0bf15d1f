// SPDX-License-Identifier: Apache-2.0

package wecom

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/wecom/wecomtest"
)

// FuzzCallback: whatever the body, signed or not, the callback never
// panics, and what it stores is at most one message, with an event id and
// a sender.
func FuzzCallback(f *testing.F) {
	fake := wecomtest.Crypt{Token: wecomtest.DefaultToken, EncodingAESKey: wecomtest.DefaultEncodingAESKey, ReceiveID: wecomtest.DefaultCorpID}
	good := fake.Seal(wecomtest.DefaultAgentID, wecomtest.Plain(wecomtest.DefaultCorpID, wecomtest.DefaultAgentID,
		wecomtest.Message{ID: "1", From: "zhangsan", Text: "hi"}))
	f.Add(good.Body, true)
	f.Add([]byte("<xml><Encrypt>AAAA</Encrypt></xml>"), false)
	f.Add([]byte(""), false)
	f.Fuzz(func(t *testing.T, body []byte, sign bool) {
		env, _, _ := adaptertest.Env(t, TypeName)
		conf := NewConfig()
		configure(t, conf, "http://127.0.0.1:1")
		a, err := New(conf, env)
		if err != nil {
			t.Fatal(err)
		}
		inbox := &adaptertest.Inbox{}
		a.intake.Open(a.Life, inbox)
		q := good.Query
		var envl envelope
		if sign && xmlEnvelope(body, &envl) {
			q = fake.Seal(0, nil).Query
			q.Set("msg_signature", fake.Sign(q.Get("timestamp"), q.Get("nonce"), envl.Encrypt))
		}
		req := httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/wecom/wecom?"+q.Encode(), bytes.NewReader(body))
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, req)
		for _, m := range inbox.Messages() {
			if m.EventID == "" || m.ChatID == "" {
				t.Fatalf("stored %+v", m)
			}
		}
		if rec.Code == http.StatusOK && len(inbox.Messages()) > 1 {
			t.Fatalf("one callback stored %d messages", len(inbox.Messages()))
		}
	})
}
