// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"bytes"
	"image/png"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// The media measure's image is a real PNG of about 1 MiB (the issue's
// "1 MiB image"), whatever the encoder's compression would make of it.
func TestBenchPNG(t *testing.T) {
	b, err := benchPNG()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(b); n < 1<<20 || n > 1<<20+8<<10 {
		t.Errorf("the image is %d bytes, not about 1 MiB", n)
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if cfg.Width != 512 || cfg.Height != 512 {
		t.Errorf("size %dx%d", cfg.Width, cfg.Height)
	}
	if ct := http.DetectContentType(b); ct != "image/png" {
		t.Errorf("sniffed as %q", ct)
	}
}

// The file server counts only whole responses of its one path.
func TestFileServer(t *testing.T) {
	fs := &fileServer{body: []byte("\x89PNG\r\n\x1a\nbody")}
	rec := httptest.NewRecorder()
	fs.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, mediaPath+"?n=3", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != string(fs.body) || rec.Header().Get("Content-Type") != "image/png" {
		t.Errorf("got %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
	}
	rec = httptest.NewRecorder()
	fs.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/other.png", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("other path: %d", rec.Code)
	}
	if n := fs.served.Load(); n != 1 {
		t.Errorf("served = %d, want 1", n)
	}
}

// The section shows both samples and the difference of their p50 and p99
// with the ratio.
func TestMediaBlocks(t *testing.T) {
	text := Summarize([]float64{0.010, 0.012, 0.020})
	img := Summarize([]float64{0.030, 0.036, 0.050})
	rep := &Report{}
	rep.Add("Media in", mediaBlocks(1<<20+600, 3, text, img)...)
	mustContain(t, render(rep), []string{
		"| text only | 3 | 12.0 ms | 20.0 ms | 10.0–20.0 ms |\n",
		"| text + 1.00 MiB PNG attachment | 3 | 36.0 ms | 50.0 ms | 30.0–50.0 ms |\n",
		"| added by the image |  | 24.0 ms | 30.0 ms | with/without (p50) 3.00× |\n",
		"1049176-byte PNG",
	})
	if !slices.Contains(Measures, "media") {
		t.Errorf("Measures lacks media: %v", Measures)
	}
}
