// SPDX-License-Identifier: Apache-2.0

package telegramtest

import (
	"encoding/json"
	"io"
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
