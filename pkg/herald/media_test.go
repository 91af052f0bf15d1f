// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/metrics"
)

func TestMediaRouteServesSignedLinks(t *testing.T) {
	cfg, err := config.Parse("herald.yaml", []byte("state_dir: "+t.TempDir()+"\nlisten:\n  http: 127.0.0.1:8089\n"))
	if err != nil {
		t.Fatal(err)
	}
	met := metrics.Nop()
	m, err := buildMedia(cfg, met)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("%PDF-1.4 report")
	item, err := m.Store.Put(t.Context(), bytes.NewReader(body), m.MaxBytes)
	if err != nil {
		t.Fatal(err)
	}
	link, err := m.Signer.URL(m.PublicURL, item, "report.pdf", m.URLTTL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(link, "http://127.0.0.1:8089/media/") {
		t.Fatalf("link %s", link)
	}
	srv := httptest.NewServer(httpRoutes(nil, (&daemon{media: m}).mediaHandler()))
	defer srv.Close()
	path := strings.TrimPrefix(link, m.PublicURL)
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, body) {
		t.Fatalf("signed link: %d %q", resp.StatusCode, got)
	}
	// A token altered by one character is refused.
	i := len("/media/") + 3
	bad := path[:i] + string(rune(path[i]^1)) + path[i+1:]
	resp, err = http.Get(srv.URL + bad)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("an altered token was served")
	}
	if n := met.MediaLinksRefused(); n != 1 {
		t.Fatalf("%v refused links counted, want 1", n)
	}
}
