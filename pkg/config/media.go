// SPDX-License-Identifier: Apache-2.0

package config

import (
	"net"
	"net/url"
	"path/filepath"
	"time"

	"github.com/heraldgw/herald/pkg/secret"
)

// Media configures images, files and voice notes in and out. A reload
// cannot change it: the media store, the URL signer and the HTTP route
// are built once at start (restart to apply).
type Media struct {
	// MaxBytes bounds one file, in and out. A larger file is refused, the
	// user is told and the text still goes to the agent with a note.
	// Default 20 MiB.
	MaxBytes int64 `yaml:"max_bytes"`
	// MaxTotalBytes bounds the media store under state_dir/media; the
	// oldest files not referenced by pending messages are pruned first.
	// Default 2 GiB.
	MaxTotalBytes int64 `yaml:"max_total_bytes"`
	// DownloadTimeout bounds one download (all of its bytes). Default 60s.
	DownloadTimeout time.Duration `yaml:"download_timeout"`
	// Retries after a failed download that may succeed later (timeouts,
	// 5xx, connection errors). Default 3.
	Retries *int `yaml:"retries"`
	// ImageTransport chooses how an image reaches the agent: data (a
	// data: URL inside the request), url (a signed herald link) or auto
	// (default: data up to data_url_max_bytes, else url).
	ImageTransport string `yaml:"image_transport"`
	// DataURLMaxBytes caps an image sent as a data: URL. Default 5 MiB.
	DataURLMaxBytes int64 `yaml:"data_url_max_bytes"`
	// PublicURL is the base of signed links (http(s)://host[:port][/prefix])
	// the agent fetches files from. Default: http:// and listen.http, which
	// only works when the agent runs on the same host.
	PublicURL string `yaml:"public_url"`
	// URLTTL is how long a signed link stays valid. Default 24h.
	URLTTL time.Duration `yaml:"url_ttl"`
	// OutboundDirs lists the directories a reply's `MEDIA: <path>` line may
	// name files under (absolute; symlinks leaving them are refused). Empty:
	// no local files are sent.
	OutboundDirs []string `yaml:"outbound_dirs"`
	// AllowPrivate lets herald fetch URLs whose address is loopback,
	// link-local or private. Default false.
	AllowPrivate bool `yaml:"allow_private"`
	// Transcribe turns voice notes into text with an OpenAI-compatible
	// /v1/audio/transcriptions endpoint; unset (no url) keeps them as files.
	Transcribe Transcribe `yaml:"transcribe"`
}

// Transcribe configures speech to text.
type Transcribe struct {
	// URL is the base URL, without /v1.
	URL string `yaml:"url"`
	// Model sent in requests; required with url.
	Model string `yaml:"model"`
	// Key is the bearer key (a credential or a file, never inline).
	Key secret.Ref `yaml:"key"`
	// Timeout bounds one transcription. Default 60s.
	Timeout time.Duration `yaml:"timeout"`
}

// Enabled reports whether transcription is configured.
func (t *Transcribe) Enabled() bool { return t.URL != "" }

// MediaPublicURL returns media.public_url or, unset, the base derived from
// listen.http (http://host:port, 127.0.0.1 for an unspecified host).
func (c *Config) MediaPublicURL() string {
	if c.Media.PublicURL != "" {
		return c.Media.PublicURL
	}
	host, port, err := net.SplitHostPort(c.Listen.HTTP)
	if err != nil {
		return ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func (c *Config) mediaDefaults() {
	m := &c.Media
	if m.MaxBytes == 0 {
		m.MaxBytes = 20 << 20
	}
	if m.MaxTotalBytes == 0 {
		m.MaxTotalBytes = 2 << 30
	}
	defDur(&m.DownloadTimeout, 60*time.Second)
	if m.Retries == nil {
		r := 3
		m.Retries = &r
	}
	def(&m.ImageTransport, "auto")
	if m.DataURLMaxBytes == 0 {
		m.DataURLMaxBytes = 5 << 20
	}
	defDur(&m.URLTTL, 24*time.Hour)
	defDur(&m.Transcribe.Timeout, 60*time.Second)
}

func (c *Config) validateMedia(add func(key, format string, args ...any)) {
	m := &c.Media
	if m.MaxBytes < 0 {
		add("media.max_bytes", "must be positive")
	}
	if m.MaxTotalBytes < m.MaxBytes {
		add("media.max_total_bytes", "%d is smaller than max_bytes %d", m.MaxTotalBytes, m.MaxBytes)
	}
	if m.DownloadTimeout < 0 || m.DownloadTimeout > time.Hour {
		add("media.download_timeout", "%s is not between 0 and the 1h limit", m.DownloadTimeout)
	}
	if m.Retries != nil && (*m.Retries < 0 || *m.Retries > 20) {
		add("media.retries", "%d is not between 0 and 20", *m.Retries)
	}
	if !oneOf(m.ImageTransport, "auto", "data", "url") {
		add("media.image_transport", "%q is not one of auto, data, url", m.ImageTransport)
	}
	if m.DataURLMaxBytes < 0 || m.DataURLMaxBytes > m.MaxBytes {
		add("media.data_url_max_bytes", "%d is not between 0 and max_bytes %d", m.DataURLMaxBytes, m.MaxBytes)
	}
	if m.PublicURL != "" && !httpURL(m.PublicURL) {
		add("media.public_url", "%q is not an http:// or https:// URL with a host", m.PublicURL)
	}
	if m.URLTTL < time.Minute || m.URLTTL > 7*24*time.Hour {
		add("media.url_ttl", "%s is not between 1m and 168h", m.URLTTL)
	}
	for i, d := range m.OutboundDirs {
		if !filepath.IsAbs(d) || filepath.Clean(d) == "/" {
			add("media.outbound_dirs", "entry %d (%q) must be an absolute directory other than /", i, d)
		}
	}
	t := &m.Transcribe
	if t.URL != "" {
		if !httpURL(t.URL) {
			add("media.transcribe.url", "%q is not an http:// or https:// URL with a host", t.URL)
		}
		if t.Model == "" {
			add("media.transcribe.model", "required with media.transcribe.url")
		}
	}
	if !t.Key.IsZero() {
		if err := t.Key.Validate(); err != nil {
			add("media.transcribe.key", "%v", err)
		}
	}
	if t.Timeout < 0 || t.Timeout > time.Hour {
		add("media.transcribe.timeout", "%s is not between 0 and the 1h limit", t.Timeout)
	}
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.RawQuery == "" && u.Fragment == ""
}
