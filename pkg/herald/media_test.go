// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/metrics"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
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

// TestMediaSetupExitCodes: a state directory where the media store cannot
// be set up (here a file where its directory belongs; a full disk or an
// I/O error alike) exits 74, which the unit restarts, not 78, which it
// never restarts; a configuration that cannot work (a transcription key
// that cannot be read) still exits 78.
func TestMediaSetupExitCodes(t *testing.T) {
	for _, tt := range []struct {
		name  string
		extra string
		setup func(stateDir string)
		want  int
	}{
		{"media store", "", func(dir string) { os.WriteFile(filepath.Join(dir, "media"), nil, 0o600) }, ExitStoreIO},
		{"signing key", "", func(dir string) { os.Mkdir(filepath.Join(dir, "media.key"), 0o700) }, ExitStoreIO},
		{"transcription key", "media:\n  transcribe: {url: \"http://127.0.0.1:1\", model: m, key: {file: /nonexistent/key}}\n", func(string) {}, ExitConfig},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(dir)
			cfg, err := config.Parse("herald.yaml", []byte("state_dir: "+dir+"\n"+tt.extra))
			if err != nil {
				t.Fatal(err)
			}
			_, err = buildMedia(cfg, metrics.Nop())
			if err == nil {
				t.Fatal("buildMedia succeeded")
			}
			logger, hook := logtest.NewNullLogger()
			d := &daemon{log: logger.WithField("component", "daemon")}
			var ee *ExitError
			if err := d.setupFailed(cfg.File, "cannot set up media", err); !errors.As(err, &ee) || ee.Code != tt.want {
				t.Fatalf("setupFailed(%v) = %v, want exit %d", err, err, tt.want)
			}
			if e := hook.LastEntry(); e == nil || e.Level != logrus.ErrorLevel {
				t.Fatal("the failure was not logged")
			}
		})
	}
}
