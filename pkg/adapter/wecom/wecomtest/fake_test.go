// SPDX-License-Identifier: Apache-2.0

package wecomtest

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/url"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

func call(t *testing.T, method, u string, body []byte) map[string]any {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func code(m map[string]any) int { n, _ := m["errcode"].(float64); return int(n) }

// TestTokenLifecycle: gettoken checks the corp id and secret, an issued
// token sends, an expired one is 42001, an unknown one 40014, a reset
// secret 40001, and a scripted frequency limit 45009.
func TestTokenLifecycle(t *testing.T) {
	f := New(t)
	get := func(corp, sec string) map[string]any {
		return call(t, http.MethodGet, f.URL+"/cgi-bin/gettoken?"+url.Values{"corpid": {corp}, "corpsecret": {sec}}.Encode(), nil)
	}
	if c := code(get("wrong", f.Secret)); c != 40013 {
		t.Errorf("wrong corp id: errcode %d, want 40013", c)
	}
	if c := code(get(f.CorpID, "wrong")); c != 40001 {
		t.Errorf("wrong secret: errcode %d, want 40001", c)
	}
	got := get(f.CorpID, f.Secret)
	tok, _ := got["access_token"].(string)
	if code(got) != 0 || tok == "" || got["expires_in"] != float64(TokenLifetime) {
		t.Fatalf("gettoken: %v", got)
	}
	send := func(tok string) int {
		body := []byte(`{"touser":"zhangsan","msgtype":"text","agentid":1000002,"text":{"content":"hi"}}`)
		return code(call(t, http.MethodPost, f.URL+"/cgi-bin/message/send?access_token="+url.QueryEscape(tok), body))
	}
	if c := send(tok); c != 0 {
		t.Errorf("send: errcode %d", c)
	}
	if s := f.To("zhangsan"); len(s) != 1 || s[0].Text != "hi" {
		t.Errorf("sent: %+v", s)
	}
	if c := send("forged"); c != 40014 {
		t.Errorf("unknown token: errcode %d, want 40014", c)
	}
	f.Inject(Send, fakeserver.RateLimit(1, 0))
	if c := send(tok); c != 45009 {
		t.Errorf("scripted: errcode %d, want 45009", c)
	}
	f.ExpireTokens()
	if c := send(tok); c != 42001 {
		t.Errorf("expired token: errcode %d, want 42001", c)
	}
	f.RejectSecret()
	if c := code(get(f.CorpID, f.Secret)); c != 40001 {
		t.Errorf("reset secret: errcode %d, want 40001", c)
	}
}

// TestSealSignature: a sealed callback's signature covers the ciphertext,
// and a tampered one does not match.
func TestSealSignature(t *testing.T) {
	f := New(t)
	cb := f.Text(Message{ID: "1", From: "zhangsan", Text: "hi"})
	var env struct {
		Encrypt string `xml:"Encrypt"`
	}
	if err := xml.Unmarshal(cb.Body, &env); err != nil {
		t.Fatal(err)
	}
	q := cb.Query
	if f.Crypt.Sign(q.Get("timestamp"), q.Get("nonce"), env.Encrypt) != q.Get("msg_signature") {
		t.Error("signature does not cover the envelope")
	}
	if cb.Tampered().Query.Get("msg_signature") == q.Get("msg_signature") {
		t.Error("Tampered kept the signature")
	}
}
