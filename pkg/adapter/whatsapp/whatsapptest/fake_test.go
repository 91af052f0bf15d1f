// SPDX-License-Identifier: Apache-2.0

package whatsapptest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func post(t *testing.T, f *Fake, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.URL+"/"+DefaultVersion+"/"+f.PhoneNumberID+"/messages", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func code(out map[string]any) float64 {
	e, _ := out["error"].(map[string]any)
	c, _ := e["code"].(float64)
	return c
}

func TestFakeWindowTokenAndScript(t *testing.T) {
	f := New(t)
	text := `{"messaging_product":"whatsapp","to":"4915550001","type":"text","text":{"body":"hi"}}`
	if st, out := post(t, f, DefaultToken, text); st != 400 || code(out) != 131047 {
		t.Fatalf("free-form to a user who never wrote: %d %v, want 400 code 131047", st, out)
	}
	f.Text(Message{ID: "wamid.1", From: "4915550001", Text: "hello"})
	if st, out := post(t, f, DefaultToken, text); st != 200 || len(f.Sent()) != 1 {
		t.Fatalf("inside the window: %d %v", st, out)
	}
	now := time.Now()
	f.SetNow(func() time.Time { return now.Add(Window + time.Minute) })
	if st, out := post(t, f, DefaultToken, text); st != 400 || code(out) != 131047 {
		t.Fatalf("after 24h: %d %v, want 131047", st, out)
	}
	tmpl := `{"messaging_product":"whatsapp","to":"4915550001","type":"template","template":{"name":"hello_world","language":{"code":"en_US"}}}`
	if st, _ := post(t, f, DefaultToken, tmpl); st != 200 || f.Sent()[1].Template != "hello_world" {
		t.Fatalf("template outside the window: %d %+v", st, f.Sent())
	}
	f.Script(RateLimited("2"))
	if st, out := post(t, f, DefaultToken, tmpl); st != 429 || code(out) != 130429 {
		t.Fatalf("scripted 429: %d %v", st, out)
	}
	if st, out := post(t, f, "wrong", tmpl); st != 401 || code(out) != 190 {
		t.Fatalf("wrong token: %d %v", st, out)
	}
	f.ExpireToken()
	if st, out := post(t, f, DefaultToken, tmpl); st != 401 || code(out) != 190 {
		t.Fatalf("expired token: %d %v", st, out)
	}
}

func TestSignAndNotification(t *testing.T) {
	// A known HMAC-SHA256 vector: key "secret", message "test".
	if got := Sign("secret", []byte("test")); got != "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914" {
		t.Fatalf("Sign = %s", got)
	}
	b := Notification("1", []Message{{ID: "wamid.A", From: "49", Text: "x"}}, []Status{{ID: "wamid.B", Status: "failed", ErrorCode: 131026}})
	for _, want := range []string{`"object":"whatsapp_business_account"`, `"phone_number_id":"1"`, `"id":"wamid.A"`, `"status":"failed"`, `"code":131026`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("notification lacks %s: %s", want, b)
		}
	}
}
