// SPDX-License-Identifier: Apache-2.0

package config

import (
	"strings"
	"testing"
	"time"
)

func TestMediaDefaults(t *testing.T) {
	c, err := Parse("herald.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	m := c.Media
	if m.MaxBytes != 20<<20 || m.MaxTotalBytes != 2<<30 || m.DownloadTimeout != time.Minute || *m.Retries != 3 ||
		m.ImageTransport != "auto" || m.DataURLMaxBytes != 5<<20 || m.URLTTL != 24*time.Hour || m.AllowPrivate || m.Transcribe.Enabled() {
		t.Fatalf("defaults %+v", m)
	}
	if got := c.MediaPublicURL(); got != "http://127.0.0.1:8089" {
		t.Fatalf("public url from listen.http: %q", got)
	}
}

func TestMediaParse(t *testing.T) {
	src := `
listen:
  http: 0.0.0.0:9000
media:
  max_bytes: 1048576
  max_total_bytes: 10485760
  download_timeout: 5s
  retries: 0
  image_transport: url
  data_url_max_bytes: 1000
  url_ttl: 1h
  outbound_dirs: [/srv/out]
  allow_private: true
  transcribe:
    url: http://127.0.0.1:8000
    model: whisper-1
    key: {credential: stt}
`
	c, err := Parse("herald.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	m := c.Media
	if m.MaxBytes != 1<<20 || *m.Retries != 0 || m.ImageTransport != "url" || m.URLTTL != time.Hour ||
		len(m.OutboundDirs) != 1 || !m.AllowPrivate || !m.Transcribe.Enabled() || m.Transcribe.Model != "whisper-1" || m.Transcribe.Timeout != time.Minute {
		t.Fatalf("media %+v", m)
	}
	if got := c.MediaPublicURL(); got != "http://127.0.0.1:9000" {
		t.Fatalf("public url for a wildcard listener: %q", got)
	}
	c2, err := Parse("herald.yaml", []byte("media:\n  public_url: https://bot.example.org/herald\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c2.MediaPublicURL(); got != "https://bot.example.org/herald" {
		t.Fatalf("explicit public url: %q", got)
	}
}

func TestMediaErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"media:\n  max_bytes: -1\n", "media.max_bytes"},
		{"media:\n  max_bytes: 100\n  max_total_bytes: 10\n", "media.max_total_bytes"},
		{"media:\n  download_timeout: 2h\n", "media.download_timeout"},
		{"media:\n  retries: -1\n", "media.retries"},
		{"media:\n  image_transport: base64\n", "media.image_transport"},
		{"media:\n  data_url_max_bytes: 1073741824\n", "media.data_url_max_bytes"},
		{"media:\n  public_url: ftp://x\n", "media.public_url"},
		{"media:\n  url_ttl: 1s\n", "media.url_ttl"},
		{"media:\n  outbound_dirs: [relative/dir]\n", "media.outbound_dirs"},
		{"media:\n  outbound_dirs: [/]\n", "media.outbound_dirs"},
		{"media:\n  transcribe:\n    url: http://127.0.0.1:8000\n", "media.transcribe.model"},
		{"media:\n  transcribe:\n    url: 127.0.0.1:8000\n    model: m\n", "media.transcribe.url"},
		{"media:\n  transcribe:\n    key: inline-secret\n", "media.transcribe.key"},
	} {
		_, err := Parse("herald.yaml", []byte(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one about %s", tc.src, err, tc.want)
		}
	}
}
