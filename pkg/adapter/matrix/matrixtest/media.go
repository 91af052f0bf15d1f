// SPDX-License-Identifier: Apache-2.0

package matrixtest

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// DefaultMaxUpload is the fake's m.upload.size: 50 MiB, Synapse's default
// max_upload_size.
const DefaultMaxUpload = 50 << 20

// ServerName is the server part of the fake's mxc:// URIs.
const ServerName = "fake.test"

// Media is a file in the fake's media repository.
type Media struct {
	ContentType, Filename string
	Data                  []byte
	// Drip sends the download's body one byte per Drip interval.
	Drip time.Duration
	// TooLarge makes downloads answer 502 M_TOO_LARGE, as a homeserver
	// does for remote media over its own limit.
	TooLarge bool
}

type media struct {
	Media
	deleted bool
}

// Upload is a file the adapter uploaded with POST /_matrix/media/v3/upload.
type Upload struct {
	URI, Filename, ContentType string
	Size                       int64
	SHA256                     string // hex
}

// AddMedia stores m and returns its mxc:// URI.
func (s *Server) AddMedia(m Media) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addMediaLocked(m)
}

func (s *Server) addMediaLocked(m Media) string {
	s.nextID++
	id := "media" + strconv.Itoa(s.nextID)
	s.media[id] = &media{Media: m}
	return "mxc://" + ServerName + "/" + id
}

// DeleteMedia makes the mxc:// URI answer 404 M_NOT_FOUND (purged by the
// homeserver's retention, or quarantined).
func (s *Server) DeleteMedia(uri string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.media[strings.TrimPrefix(uri, "mxc://"+ServerName+"/")]; m != nil {
		m.deleted = true
	}
}

// SetMaxUpload sets m.upload.size: larger uploads answer 413 M_TOO_LARGE.
func (s *Server) SetMaxUpload(n int64) { fakeserver.Set(&s.mu, &s.maxUpload, n) }

// LegacyMedia makes the fake a homeserver before spec v1.11: the
// authenticated /_matrix/client/v1/media endpoints answer 404
// M_UNRECOGNIZED, and media is served by /_matrix/media/v3/download.
func (s *Server) LegacyMedia(legacy bool) { fakeserver.Set(&s.mu, &s.legacy, legacy) }

// HideMediaConfig makes both media config endpoints answer 404
// M_UNRECOGNIZED, as a homeserver that has neither.
func (s *Server) HideMediaConfig(hide bool) { fakeserver.Set(&s.mu, &s.noConfig, hide) }

// Uploads returns the files uploaded so far, in order.
func (s *Server) Uploads() []Upload { return fakeserver.Copy(&s.mu, &s.uploads) }

// MediaRequests counts the calls to a media endpoint ("download",
// "legacy download", "upload", "config", "legacy config").
func (s *Server) MediaRequests(endpoint string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mediaCalls[endpoint]
}

// serveMedia answers the media repository's endpoints; false for other
// paths.
func (s *Server) serveMedia(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.EscapedPath()
	var endpoint string
	var parts []string
	switch {
	case r.Method == http.MethodGet && p == "/_matrix/client/v1/media/config":
		endpoint = "config"
	case r.Method == http.MethodGet && p == "/_matrix/media/v3/config":
		endpoint = "legacy config"
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/_matrix/client/v1/media/download/"):
		endpoint, parts = "download", strings.Split(strings.TrimPrefix(p, "/_matrix/client/v1/media/download/"), "/")
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/_matrix/media/v3/download/"):
		endpoint, parts = "legacy download", strings.Split(strings.TrimPrefix(p, "/_matrix/media/v3/download/"), "/")
	case r.Method == http.MethodPost && p == "/_matrix/media/v3/upload":
		endpoint = "upload"
	default:
		return false
	}
	s.mu.Lock()
	if s.mediaCalls == nil {
		s.mediaCalls = map[string]int{}
	}
	s.mediaCalls[endpoint]++
	legacy, noConfig := s.legacy, s.noConfig
	s.notify()
	s.mu.Unlock()
	if legacy && (endpoint == "config" || endpoint == "download") || noConfig && strings.HasSuffix(endpoint, "config") {
		writeError(w, http.StatusNotFound, "M_UNRECOGNIZED", "Unrecognized request")
		return true
	}
	// The legacy download needs no token; a client may send one.
	if endpoint != "legacy download" && !s.admit(w, r, endpoint) {
		return true
	}
	switch endpoint {
	case "config", "legacy config":
		s.mu.Lock()
		n := s.maxUpload
		s.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{"m.upload.size": n})
	case "upload":
		s.upload(w, r)
	default:
		s.download(w, r, parts)
	}
	return true
}

func (s *Server) download(w http.ResponseWriter, r *http.Request, parts []string) {
	if len(parts) < 2 || len(parts) > 3 {
		writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "bad media path")
		return
	}
	server, _ := url.PathUnescape(parts[0])
	id, _ := url.PathUnescape(parts[1])
	s.mu.Lock()
	m := s.media[id]
	s.mu.Unlock()
	switch {
	case server != ServerName || m == nil || m.deleted:
		writeError(w, http.StatusNotFound, "M_NOT_FOUND", "Not found")
		return
	case m.TooLarge:
		writeError(w, http.StatusBadGateway, "M_TOO_LARGE", "Remote content is too large")
		return
	}
	w.Header().Set("Content-Type", m.ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(m.Data)))
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": m.Filename}))
	w.WriteHeader(http.StatusOK)
	if m.Drip <= 0 {
		_, _ = w.Write(m.Data)
		return
	}
	fakeserver.Drip(w, r, m.Data, m.Drip, s.done)
}

// upload answers POST /_matrix/media/v3/upload?filename=: the body is the
// file, Content-Type its type; 413 M_TOO_LARGE over m.upload.size.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	limit := s.maxUpload
	s.mu.Unlock()
	if r.ContentLength > limit {
		writeError(w, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "Upload request body is too large")
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "M_UNKNOWN", "cannot read the body")
		return
	}
	if int64(len(data)) > limit {
		writeError(w, http.StatusRequestEntityTooLarge, "M_TOO_LARGE", "Upload request body is too large")
		return
	}
	sum := sha256.Sum256(data)
	name := r.URL.Query().Get("filename")
	ct := r.Header.Get("Content-Type")
	s.mu.Lock()
	uri := s.addMediaLocked(Media{ContentType: ct, Filename: name, Data: data})
	s.uploads = append(s.uploads, Upload{URI: uri, Filename: name, ContentType: ct, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
	s.notify()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"content_uri": uri})
}
