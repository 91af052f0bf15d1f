// SPDX-License-Identifier: Apache-2.0

package mattermosttest

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"
)

// uploadForm posts a multipart upload with fields in order and returns
// the answer.
func uploadForm(t *testing.T, s *Server, fields [][2]string, name string, data []byte) *http.Response {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, f := range fields {
		_ = w.WriteField(f[0], f[1])
	}
	if name != "" {
		fw, _ := w.CreateFormFile("files", name)
		_, _ = fw.Write(data)
	}
	w.Close()
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/v4/files", &buf)
	req.Header.Set("Authorization", "Bearer "+DefaultToken)
	req.Header.Set("Content-Type", w.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestFilesDownloadAndDelete(t *testing.T) {
	s := New(t, DefaultToken)
	p := s.PostFiles("dm", "ann", "cap", File{Name: "a.png", MimeType: "image/png", Data: []byte("png"), Width: 2, Height: 3})
	if len(p.FileIDs) != 1 || p.Metadata == nil || p.Metadata.Files[0].Extension != "png" || p.Metadata.Files[0].PostID != p.ID || p.Metadata.Files[0].Width != 2 {
		t.Fatalf("post %+v", p)
	}
	r := get(t, s, DefaultToken, "/api/v4/files/"+p.FileIDs[0])
	b, _ := io.ReadAll(r.Body)
	if r.StatusCode != http.StatusOK || string(b) != "png" || r.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("download: HTTP %d %q", r.StatusCode, b)
	}
	if r := get(t, s, "wrong", "/api/v4/files/"+p.FileIDs[0]); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: HTTP %d", r.StatusCode)
	}
	s.DeleteFile(p.FileIDs[0])
	if r := get(t, s, DefaultToken, "/api/v4/files/"+p.FileIDs[0]); r.StatusCode != http.StatusNotFound {
		t.Fatalf("deleted: HTTP %d", r.StatusCode)
	}
	q := s.PostFiles("town", "ann", "", File{Name: "b.txt", MimeType: "text/plain", Data: []byte("b")})
	s.RemoveChannel("town")
	if r := get(t, s, DefaultToken, "/api/v4/files/"+q.FileIDs[0]); r.StatusCode != http.StatusForbidden {
		t.Fatalf("channel left: HTTP %d", r.StatusCode)
	}
}

func TestFilesSlowBody(t *testing.T) {
	s := New(t, DefaultToken)
	p := s.PostFiles("dm", "ann", "", File{Name: "v.ogg", MimeType: "audio/ogg", Data: []byte("0123456789"), Drip: 20 * time.Millisecond})
	r := get(t, s, DefaultToken, "/api/v4/files/"+p.FileIDs[0])
	if r.ContentLength != 10 {
		t.Fatalf("Content-Length %d", r.ContentLength)
	}
	// The body arrives one byte per read, flushed.
	n, err := r.Body.Read(make([]byte, 10))
	if err != nil || n != 1 {
		t.Fatalf("first read: %d bytes, %v", n, err)
	}
	rest, err := io.ReadAll(r.Body)
	if err != nil || string(rest) != "123456789" {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

func TestFilesUploadAndAttach(t *testing.T) {
	s := New(t, DefaultToken)
	r := uploadForm(t, s, [][2]string{{"channel_id", "town"}, {"client_ids", "c1"}}, "r.pdf", []byte("%PDF"))
	var out struct {
		FileInfos []FileInfo `json:"file_infos"`
		ClientIDs []string   `json:"client_ids"`
	}
	if err := json.NewDecoder(r.Body).Decode(&out); err != nil || r.StatusCode != http.StatusCreated || len(out.FileInfos) != 1 || out.ClientIDs[0] != "c1" {
		t.Fatalf("upload: HTTP %d %+v %v", r.StatusCode, out, err)
	}
	id := out.FileInfos[0].ID
	if ups := s.Uploads(); len(ups) != 1 || ups[0].ID != id || ups[0].Size != 4 || ups[0].Name != "r.pdf" {
		t.Fatalf("uploads %+v", ups)
	}
	var status int
	post := func(channel string, ids ...string) Post {
		body, _ := json.Marshal(map[string]any{"channel_id": channel, "message": "m", "file_ids": ids})
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/v4/posts", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+DefaultToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		status = resp.StatusCode
		var p Post
		_ = json.NewDecoder(resp.Body).Decode(&p)
		return p
	}
	// A file of another channel is dropped from the post, as the server does.
	if p := post("dm", id); len(p.FileIDs) != 0 {
		t.Fatalf("file of another channel attached: %+v", p)
	}
	if p := post("town", id); len(p.FileIDs) != 1 || p.Metadata.Files[0].ID != id {
		t.Fatalf("post %+v", p)
	}
	// Attached once: a second post does not get it.
	if p := post("town", id); len(p.FileIDs) != 0 {
		t.Fatalf("file attached twice: %+v", p)
	}
	// More than ten ids are refused.
	ids := strings.Split(strings.Repeat("abcdefghijklmnopqrstuvwxyz,", 11), ",")
	if post("town", ids[:11]...); status != http.StatusBadRequest {
		t.Fatalf("eleven file ids: HTTP %d", status)
	}
}

func TestFilesUploadRefusals(t *testing.T) {
	s := New(t, DefaultToken)
	if r := uploadForm(t, s, nil, "r.pdf", []byte("%PDF")); r.StatusCode != http.StatusBadRequest {
		t.Fatalf("no channel_id: HTTP %d", r.StatusCode)
	}
	if r := uploadForm(t, s, [][2]string{{"channel_id", "nowhere"}}, "r.pdf", []byte("%PDF")); r.StatusCode != http.StatusForbidden {
		t.Fatalf("unknown channel: HTTP %d", r.StatusCode)
	}
	s.SetMaxFileSize(100)
	r := uploadForm(t, s, [][2]string{{"channel_id", "town"}}, "big.bin", make([]byte, 200))
	var e struct {
		ID string `json:"id"`
	}
	_ = json.NewDecoder(r.Body).Decode(&e)
	if r.StatusCode != http.StatusRequestEntityTooLarge || e.ID != "api.file.upload_file.too_large_detailed.app_error" {
		t.Fatalf("too large: HTTP %d %q", r.StatusCode, e.ID)
	}
	if len(s.Uploads()) != 0 {
		t.Fatalf("uploads %+v", s.Uploads())
	}
}
