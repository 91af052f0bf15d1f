// SPDX-License-Identifier: Apache-2.0

package discordtest

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
)

func TestCDNAndUploads(t *testing.T) {
	s := New(t, Options{})
	obj := s.AddAttachment("200", "700", Attachment{Name: "a.png", ContentType: "image/png", Data: []byte("png")})
	get := func(u string) (int, string) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	u := obj["url"].(string)
	if !strings.Contains(u, "ex=") || !strings.Contains(u, "hm=") {
		t.Fatalf("url %s is not signed", u)
	}
	if code, body := get(u); code != 200 || body != "png" {
		t.Fatalf("cdn: %d %q", code, body)
	}
	s.ExpireAttachmentURLs()
	if code, _ := get(u); code != 404 {
		t.Fatalf("expired url: %d", code)
	}

	upload := func(size int) *http.Response {
		t.Helper()
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		_ = w.WriteField("payload_json", `{"content":"","attachments":[{"id":0,"filename":"f.bin"}]}`)
		fw, _ := w.CreateFormFile("files[0]", "f.bin")
		_, _ = fw.Write(make([]byte, size))
		w.Close()
		req, _ := http.NewRequest(http.MethodPost, s.APIURL+"/channels/200/messages", &buf)
		req.Header.Set("Content-Type", w.FormDataContentType())
		req.Header.Set("Authorization", "Bot "+s.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := upload(10); resp.StatusCode != 200 {
		t.Fatalf("upload: %d", resp.StatusCode)
	}
	if m := s.Messages(); len(m) != 1 || len(m[0].Attachments) != 1 || m[0].Attachments[0].Size != 10 || m[0].Attachments[0].Name != "f.bin" {
		t.Fatalf("messages %+v", m)
	}
	if resp := upload(MaxUpload); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("over the limit: %d", resp.StatusCode)
	}
}
