// SPDX-License-Identifier: Apache-2.0

package media_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/media"
)

func TestLoadOrCreateKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "media.key")
	var wg sync.WaitGroup
	keys := make([][]byte, 8)
	for i := range keys {
		wg.Go(func() {
			k, err := media.LoadOrCreateKey(p)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	for _, k := range keys {
		if len(k) != 32 || !bytes.Equal(k, keys[0]) {
			t.Fatalf("keys differ: %x vs %x", k, keys[0])
		}
	}
	info, err := os.Stat(p)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("%v mode %v", err, info.Mode())
	}
	if err := os.WriteFile(p, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := media.LoadOrCreateKey(p); err == nil {
		t.Fatal("short key accepted")
	}
}

func TestSignerServe(t *testing.T) {
	dir := t.TempDir()
	s, _ := media.OpenStore(filepath.Join(dir, "media"), 0)
	key, err := media.LoadOrCreateKey(filepath.Join(dir, "key"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	rejects := map[string]int{}
	sg, _ := media.NewSigner(key, s)
	sg.OnReject = func(r string) { mu.Lock(); rejects[r]++; mu.Unlock() }
	srv := httptest.NewServer(sg.Handler())
	defer srv.Close()

	data := []byte("%PDF-1.4\nhello")
	it, err := s.Put(context.Background(), bytes.NewReader(data), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	u, err := sg.URL(srv.URL, it, `../evil"; name=.pdf`, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	h := resp.Header
	if h.Get("Content-Type") != "application/pdf" || h.Get("Content-Length") != "14" || h.Get("X-Content-Type-Options") != "nosniff" ||
		!strings.HasPrefix(h.Get("Cache-Control"), "private") || !strings.HasPrefix(h.Get("Content-Disposition"), "attachment;") ||
		strings.Contains(h.Get("Content-Disposition"), "..") || strings.Count(h.Get("Content-Disposition"), `"`) != 2 {
		t.Fatalf("headers %v", h)
	}
	// HEAD.
	resp, err = http.Head(u)
	if err != nil || resp.StatusCode != 200 || resp.ContentLength != 14 {
		t.Fatalf("head %v %+v", err, resp)
	}
	resp.Body.Close()
	// Survives a restart: a new signer with the key reloaded accepts the URL.
	key2, _ := media.LoadOrCreateKey(filepath.Join(dir, "key"))
	sg2, _ := media.NewSigner(key2, s)
	tok := strings.Split(strings.TrimPrefix(u, srv.URL+"/media/"), "/")[0]
	if sha, reason := sg2.Verify(tok); sha != it.SHA256 || reason != "" {
		t.Fatalf("after restart: %q %q", sha, reason)
	}

	// Failures: all the same 404.
	expired, _ := sg.URL(srv.URL, it, "a.pdf", -time.Second)
	// One character of the MAC changed to another of the base64url
	// alphabet, so the token still decodes (a bit flip of the character
	// could leave the alphabet, and the token would be refused as
	// malformed instead).
	flipped := []byte(tok)
	if flipped[len(flipped)-3] == 'A' {
		flipped[len(flipped)-3] = 'B'
	} else {
		flipped[len(flipped)-3] = 'A'
	}
	other, _ := media.NewSigner(bytes.Repeat([]byte{7}, 32), s)
	foreign, _ := other.URL(srv.URL, it, "a.pdf", time.Hour)
	missing, _ := sg.URL(srv.URL, media.Item{SHA256: shaOf([]byte("absent"))}, "a", time.Hour)
	var first []byte
	for _, bad := range []string{expired, srv.URL + "/media/" + string(flipped) + "/a.pdf", foreign, missing, srv.URL + "/media/xyz/a", srv.URL + "/media/", srv.URL + "/other"} {
		resp, err := http.Get(bad)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Fatalf("%s: status %d", bad, resp.StatusCode)
		}
		if first == nil {
			first = b
		} else if !bytes.Equal(b, first) {
			t.Fatalf("different failure bodies %q %q", b, first)
		}
	}
	resp, _ = http.Post(u, "text/plain", nil)
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("post: %d", resp.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if rejects["expired"] != 1 || rejects["bad_mac"] != 2 || rejects["missing"] != 1 || rejects["bad_token"] != 3 || rejects["method"] != 1 {
		t.Fatalf("rejects %v", rejects)
	}
}

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{
		"report.pdf":          "report.pdf",
		"../../etc/passwd":    "passwd",
		`a"b;c%d`:             "a_b_c_d",
		"..":                  "file.pdf",
		"":                    "file.pdf",
		"x\r\nSet-Cookie: y":  "x__Set-Cookie: y",
		`C:\Users\me\doc.pdf`: "doc.pdf",
	} {
		if got := media.SafeName(in, "application/pdf"); got != want {
			t.Errorf("SafeName(%q) = %q, want %q", in, got, want)
		}
	}
	if n := media.SafeName(strings.Repeat("x", 500), ""); len(n) > 130 {
		t.Errorf("long name kept: %d", len(n))
	}
}
