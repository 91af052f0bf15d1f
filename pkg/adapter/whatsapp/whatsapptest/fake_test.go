// SPDX-License-Identifier: Apache-2.0

package whatsapptest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
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

func TestFakeMediaDownloads(t *testing.T) {
	f := New(t)
	id := f.AddMedia(Media{MIME: "image/jpeg", Data: []byte("jpeg bytes")})
	get := func(u, token string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	st, b := get(f.URL+"/"+DefaultVersion+"/"+id+"?phone_number_id="+f.PhoneNumberID, DefaultToken)
	var info struct {
		URL, MIMEType, FileSize, ID string
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); st != 200 || err != nil {
		t.Fatalf("media url: %d %s", st, b)
	}
	info.URL, _ = raw["url"].(string)
	info.FileSize, _ = raw["file_size"].(string)
	if info.URL == "" || info.FileSize != "10" || raw["mime_type"] != "image/jpeg" || raw["id"] != id || raw["sha256"] == "" {
		t.Fatalf("media url answer %v", raw)
	}
	if st, _ := get(info.URL, ""); st != 401 {
		t.Fatalf("download without the token: %d, want 401", st)
	}
	if st, b := get(info.URL, DefaultToken); st != 200 || string(b) != "jpeg bytes" {
		t.Fatalf("download: %d %q", st, b)
	}
	f.ExpireMediaURLs()
	if st, _ := get(info.URL, DefaultToken); st != 404 {
		t.Fatalf("expired url: %d, want 404", st)
	}
	f.DeleteMedia(id)
	if st, b := get(f.URL+"/"+DefaultVersion+"/"+id, DefaultToken); st != 400 || !strings.Contains(string(b), `"code":100`) {
		t.Fatalf("deleted media: %d %s", st, b)
	}
	if l, d, u := f.MediaRequests(); l != 2 || d != 3 || u != 1 {
		t.Fatalf("media requests %d %d %d", l, d, u)
	}
}

func TestFakeUploadsAndMediaMessages(t *testing.T) {
	f := New(t)
	upload := func(typ string, size int) (int, map[string]any) {
		t.Helper()
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		_ = w.WriteField("messaging_product", "whatsapp")
		_ = w.WriteField("type", typ)
		fw, _ := w.CreateFormFile("file", "f.bin")
		_, _ = fw.Write(make([]byte, size))
		w.Close()
		req, _ := http.NewRequest(http.MethodPost, f.URL+"/"+DefaultVersion+"/"+f.PhoneNumberID+"/media", &buf)
		req.Header.Set("Content-Type", w.FormDataContentType())
		req.Header.Set("Authorization", "Bearer "+DefaultToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	st, out := upload("image/png", 10)
	id, _ := out["id"].(string)
	if st != 200 || id == "" {
		t.Fatalf("upload: %d %v", st, out)
	}
	if ups := f.Uploads(); len(ups) != 1 || ups[0].Size != 10 || ups[0].Name != "f.bin" || ups[0].Type != "image/png" || ups[0].ID != id {
		t.Fatalf("uploads %+v", ups)
	}
	if st, out := upload("image/png", MaxImage+1); st != http.StatusRequestEntityTooLarge || code(out) != 131053 {
		t.Fatalf("image over 5 MB: %d %v", st, out)
	}
	f.Text(Message{ID: "wamid.1", From: "4915550001", Text: "hello"})
	img := `{"messaging_product":"whatsapp","to":"4915550001","type":"image","image":{"id":"` + id + `","caption":"look"}}`
	if st, out := post(t, f, DefaultToken, img); st != 200 {
		t.Fatalf("image message: %d %v", st, out)
	}
	if s := f.Sent(); len(s) != 1 || s[0].Type != "image" || s[0].MediaID != id || s[0].Caption != "look" {
		t.Fatalf("sent %+v", s)
	}
	unknown := `{"messaging_product":"whatsapp","to":"4915550001","type":"document","document":{"id":"42","filename":"a.pdf"}}`
	if st, out := post(t, f, DefaultToken, unknown); st != 400 || code(out) != 131053 {
		t.Fatalf("unknown media id: %d %v", st, out)
	}
}

func TestFakeSlowDownload(t *testing.T) {
	f := New(t)
	id := f.AddMedia(Media{MIME: "application/pdf", Data: []byte("0123456789"), Drip: time.Hour})
	f.Text(Message{ID: "wamid.1", From: "4915550001", Text: "x"})
	req, _ := http.NewRequest(http.MethodGet, f.URL+"/"+DefaultVersion+"/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+DefaultToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&raw)
	resp.Body.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, raw["url"].(string), nil)
	req.Header.Set("Authorization", "Bearer "+DefaultToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil || len(b) == 10 {
		t.Fatalf("a dripping body read to the end: %q %v", b, err)
	}
}
