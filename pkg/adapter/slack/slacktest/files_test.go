// SPDX-License-Identifier: Apache-2.0

package slacktest

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestFileDownload: a hosted file is served to the bot token only; any
// other request gets the sign-in page with status 200, as Slack answers.
func TestFileDownload(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	obj := s.AddFile(File{Name: "a.txt", Mimetype: "text/plain", Data: []byte("hello")})
	get := func(token string) (string, string) {
		req, _ := http.NewRequest(http.MethodGet, obj["url_private_download"].(string), nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Header.Get("Content-Type"), string(b)
	}
	if ct, body := get(s.BotToken()); ct != "text/plain" || body != "hello" {
		t.Errorf("bot token: %s %q", ct, body)
	}
	for _, tok := range []string{"", "xoxb-other", s.AppToken()} {
		if ct, body := get(tok); !strings.HasPrefix(ct, "text/html") || !strings.Contains(body, "Sign in") {
			t.Errorf("token %q: %s %q", tok, ct, body)
		}
	}
	s.SetFilesRead(false)
	if ct, _ := get(s.BotToken()); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("without files:read: %s", ct)
	}
}

// TestUploadFlow: a file is shared only after its bytes arrived, once.
func TestUploadFlow(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	post := func(path, ctype, body string) string {
		req, _ := http.NewRequest(http.MethodPost, s.http.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+s.BotToken())
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	form := "application/x-www-form-urlencoded"
	if out := post("/api/files.getUploadURLExternal", form, "filename=a.txt&length=0"); !strings.Contains(out, "missing_argument") {
		t.Errorf("length 0: %s", out)
	}
	out := post("/api/files.getUploadURLExternal", form, "filename=a.txt&length=5")
	if !strings.Contains(out, `"file_id":"FU`) {
		t.Fatalf("getUploadURLExternal: %s", out)
	}
	id := out[strings.Index(out, `"file_id":"`)+11:]
	id = id[:strings.IndexByte(id, '"')]
	complete := `{"files":[{"id":"` + id + `","title":"a"}],"channel_id":"C1","initial_comment":"hi"}`
	if out := post("/api/files.completeUploadExternal", "application/json", complete); !strings.Contains(out, "file_not_found") {
		t.Errorf("share before the bytes: %s", out)
	}
	if out := post("/upload/v1/"+id, "application/octet-stream", "hello"); out != "OK - 5" {
		t.Errorf("upload: %q", out)
	}
	if out := post("/api/files.completeUploadExternal", "application/json", complete); !strings.Contains(out, `"ok":true`) {
		t.Errorf("share: %s", out)
	}
	if out := post("/api/files.completeUploadExternal", "application/json", complete); !strings.Contains(out, "file_not_found") {
		t.Errorf("second share: %s", out)
	}
	if ups := s.Uploads(); len(ups) != 1 || ups[0].Caption != "hi" || ups[0].Size != 5 || ups[0].Channel != "C1" {
		t.Errorf("uploads %+v", ups)
	}
}
