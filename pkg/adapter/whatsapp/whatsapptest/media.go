// SPDX-License-Identifier: Apache-2.0

package whatsapptest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// Cloud API media limits by type, as the fake enforces them on uploads.
const (
	MaxImage    = 5 << 20   // image/jpeg, image/png
	MaxAudio    = 16 << 20  // audio/*
	MaxVideo    = 16 << 20  // video/*
	MaxSticker  = 500 << 10 // image/webp
	MaxDocument = 100 << 20 // anything else
)

// Media is a file the fake serves by media id, as a user's upload.
type Media struct {
	MIME string
	Data []byte
	// Drip sends the download body one byte per Drip interval.
	Drip time.Duration
	// Size, when set, is announced as file_size instead of len(Data).
	Size int64
}

// Upload is a file uploaded with POST /{phone-number-id}/media.
type Upload struct {
	ID     string // the media id answered
	Type   string // the type form field
	Name   string // the file part's file name
	MIME   string // the file part's Content-Type
	Size   int64
	SHA256 string // hex
}

type mediaFile struct {
	Media
	uploaded bool
}

// AddMedia stores a file as WhatsApp keeps a user's media and returns its
// media id, to put in a Message's MediaID.
func (f *Fake) AddMedia(m Media) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.addMediaLocked(mediaFile{Media: m})
}

func (f *Fake) addMediaLocked(m mediaFile) string {
	if f.media == nil {
		f.media = map[string]*mediaFile{}
	}
	f.seq++
	id := strconv.Itoa(1_000_000_000_000 + f.seq)
	f.media[id] = &m
	return id
}

// DeleteMedia forgets a media id, as when its 7 days (30 for uploads) are
// over: GET /{media-id} answers code 100.
func (f *Fake) DeleteMedia(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.media, id)
}

// ExpireMediaURLs makes every media URL handed out so far answer 404, as
// WhatsApp's do 5 minutes after GET /{media-id}.
func (f *Fake) ExpireMediaURLs() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.urlGen++
}

// ExpireNextURL makes the next media URL handed out answer 404 at once.
func (f *Fake) ExpireNextURL() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expireNext = true
}

// Uploads returns the files uploaded so far.
func (f *Fake) Uploads() []Upload {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Upload(nil), f.uploads...)
}

// MediaRequests counts media URL lookups (GET /{media-id}) and downloads,
// and downloads without the bearer token (refused 401).
func (f *Fake) MediaRequests() (lookups, downloads, unauthorized int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lookups, f.downloads, f.downloadNoAuth
}

// mediaURL answers GET /{version}/{media-id}: the Cloud API's
// {messaging_product, url, mime_type, sha256, file_size, id}, or code 100
// for an unknown id.
func (f *Fake) mediaURL(w http.ResponseWriter, r *http.Request) {
	if !f.answer(w, r) {
		return
	}
	id := r.PathValue("media")
	f.mu.Lock()
	f.lookups++
	f.wake()
	m := f.media[id]
	gen := f.urlGen
	if f.expireNext {
		f.expireNext = false
		gen--
	}
	f.mu.Unlock()
	if m == nil || (r.URL.Query().Has("phone_number_id") && r.URL.Query().Get("phone_number_id") != f.PhoneNumberID) {
		writeError(w, GraphError(http.StatusBadRequest, 100,
			"Unsupported get request. Object with ID '"+id+"' does not exist, cannot be loaded due to missing permissions, or does not support this operation"))
		return
	}
	size := m.Size
	if size == 0 {
		size = int64(len(m.Data))
	}
	sum := sha256.Sum256(m.Data)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"messaging_product": "whatsapp",
		"url":               f.URL + "/whatsapp_business/attachments/?mid=" + id + "&gen=" + strconv.Itoa(gen),
		"mime_type":         m.MIME,
		"sha256":            base64.StdEncoding.EncodeToString(sum[:]),
		"file_size":         strconv.FormatInt(size, 10),
		"id":                id,
	})
}

// download serves a media URL: only with the bearer token, only while the
// URL is current.
func (f *Fake) download(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("mid")
	f.mu.Lock()
	f.downloads++
	auth := r.Header.Get("Authorization") == "Bearer "+f.Token && !f.expired
	if !auth {
		f.downloadNoAuth++
	}
	m := f.media[id]
	current := r.URL.Query().Get("gen") == strconv.Itoa(f.urlGen)
	f.wake()
	f.mu.Unlock()
	switch {
	case !auth:
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	case m == nil || !current:
		http.Error(w, "URL signature expired", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", m.MIME)
	fakeserver.ServeBytes(w, r, m.Data, m.Drip, f.done)
}

// limitFor is the upload limit of a MIME type.
func limitFor(mimeType string) int64 {
	mt := strings.ToLower(mimeType)
	switch {
	case mt == "image/jpeg" || mt == "image/png":
		return MaxImage
	case mt == "image/webp":
		return MaxSticker
	case strings.HasPrefix(mt, "audio/"):
		return MaxAudio
	case strings.HasPrefix(mt, "video/"):
		return MaxVideo
	}
	return MaxDocument
}

var errTooLarge = errors.New("too large")

// upload answers POST /{version}/{phone-number-id}/media: multipart with
// messaging_product=whatsapp, type (the MIME type) and file. A request
// over 100 MB is answered 413; a file over its type's limit 413 with code
// 131053 (media upload error).
func (f *Fake) upload(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength > MaxDocument+(1<<20) {
		writeError(w, Failure{Status: http.StatusRequestEntityTooLarge, Code: 131053,
			Message: "(#131053) Media upload error: request entity too large"})
		return
	}
	// The body is read first, as for a message: a request held by the
	// script then ends when the client gives up.
	up, product, err := readUpload(r)
	if !f.answer(w, r) {
		return
	}
	switch {
	case errors.Is(err, errTooLarge):
		writeError(w, Failure{Status: http.StatusRequestEntityTooLarge, Code: 131053,
			Message: fmt.Sprintf("(#131053) Media upload error: file is too large for %s (limit %d bytes)", up.Type, limitFor(up.Type))})
		return
	case err != nil || product != "whatsapp" || up.Type == "" || up.SHA256 == "":
		writeError(w, GraphError(http.StatusBadRequest, 100, "(#100) Invalid parameter"))
		return
	}
	f.mu.Lock()
	up.ID = f.addMediaLocked(mediaFile{Media: Media{MIME: up.Type}, uploaded: true})
	f.uploads = append(f.uploads, up)
	f.wake()
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":%q}`, up.ID)
}

func readUpload(r *http.Request) (up Upload, product string, err error) {
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return up, "", err
	}
	mr := multipart.NewReader(io.LimitReader(r.Body, MaxDocument+(1<<20)), params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return up, product, nil
		}
		if err != nil {
			return up, product, err
		}
		switch p.FormName() {
		case "messaging_product":
			b, _ := io.ReadAll(io.LimitReader(p, 64))
			product = string(b)
		case "type":
			b, _ := io.ReadAll(io.LimitReader(p, 256))
			up.Type = string(b)
		case "file":
			h := sha256.New()
			up.Name, up.MIME = p.FileName(), p.Header.Get("Content-Type")
			if up.Size, err = io.Copy(h, p); err != nil {
				return up, product, err
			}
			up.SHA256 = hex.EncodeToString(h.Sum(nil))
			if up.Size > limitFor(up.Type) {
				return up, product, errTooLarge
			}
		}
	}
}

// uploadedMedia reports whether id is a media id uploaded to the fake.
func (f *Fake) uploadedMedia(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.media[id]
	return m != nil && m.uploaded
}
