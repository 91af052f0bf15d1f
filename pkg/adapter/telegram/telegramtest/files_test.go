// SPDX-License-Identifier: Apache-2.0

package telegramtest

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
)

func TestFiles(t *testing.T) {
	s := New(t, "")
	path := s.AddFile("ok", File{Data: []byte("hello")})
	s.AddFile("big", File{Size: MaxDownload + 1})
	getFile := func(id string) (int, string) {
		t.Helper()
		resp, err := http.Post(s.URL+"/bot"+s.Token+"/getFile", "application/json", strings.NewReader(`{"file_id":"`+id+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := getFile("ok")
	var env struct {
		Result struct {
			FilePath string `json:"file_path"`
			FileSize int64  `json:"file_size"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(body), &env); code != 200 || err != nil || env.Result.FilePath != path || env.Result.FileSize != 5 {
		t.Fatalf("getFile ok: %d %s", code, body)
	}
	if code, body := getFile("big"); code != 400 || !strings.Contains(body, "file is too big") {
		t.Fatalf("getFile big: %d %s", code, body)
	}
	resp, err := http.Get(s.URL + "/file/bot" + s.Token + "/" + path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "hello" {
		t.Fatalf("download: %d %q", resp.StatusCode, b)
	}
	s.ExpireFile("ok")
	if code, body := getFile("ok"); code != 400 || !strings.Contains(body, "invalid file_id") {
		t.Fatalf("getFile expired: %d %s", code, body)
	}
	resp, err = http.Get(s.URL + "/file/bot" + s.Token + "/" + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("download expired: %d", resp.StatusCode)
	}
}

func TestUploads(t *testing.T) {
	s := New(t, "")
	upload := func(method, field string, size int) (int, string) {
		t.Helper()
		var buf bytes.Buffer
		w := multipart.NewWriter(&buf)
		_ = w.WriteField("chat_id", "5")
		_ = w.WriteField("caption", "look")
		fw, _ := w.CreateFormFile(field, "a.png")
		_, _ = fw.Write(make([]byte, size))
		w.Close()
		resp, err := http.Post(s.URL+"/bot"+s.Token+"/"+method, w.FormDataContentType(), &buf)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := upload("sendPhoto", "photo", 100); code != 200 {
		t.Fatalf("sendPhoto: %d %s", code, body)
	}
	if u := s.Uploads(); len(u) != 1 || u[0].Method != "sendPhoto" || u[0].Size != 100 || u[0].Caption != "look" || u[0].Name != "a.png" || u[0].ChatID != "5" {
		t.Fatalf("uploads %+v", u)
	}
	if code, body := upload("sendPhoto", "photo", MaxPhotoUpload+1); code != 400 || !strings.Contains(body, "file is too big") {
		t.Fatalf("big photo: %d %s", code, body)
	}
	if code, body := upload("sendDocument", "photo", 10); code != 400 {
		t.Fatalf("wrong field: %d %s", code, body)
	}
}
