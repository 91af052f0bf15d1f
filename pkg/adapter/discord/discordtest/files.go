// SPDX-License-Identifier: Apache-2.0

package discordtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// MaxUpload is the upload limit of a channel without server boosts. It
// bounds the whole request: a larger one is answered 413 with code 40005.
const MaxUpload = 10 << 20

// Upload is a file attached to a message created through REST.
type Upload struct {
	Field       string // files[0]
	Name        string
	ContentType string
	Size        int64
	SHA256      string // hex
}

type uploadsKey struct{}

var errTooLarge = errors.New("request entity too large")

// readMultipart reads a multipart/form-data create: payload_json becomes
// the body, the files[n] parts are hashed.
func readMultipart(r *http.Request) (body []byte, ups []Upload, err error) {
	if r.ContentLength > MaxUpload {
		return nil, nil, errTooLarge
	}
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, nil, err
	}
	mr := multipart.NewReader(io.LimitReader(r.Body, MaxUpload+1), params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return body, ups, nil
		}
		if err != nil {
			return nil, nil, err
		}
		switch name := p.FormName(); {
		case name == "payload_json":
			body, err = io.ReadAll(io.LimitReader(p, 1<<20))
		case strings.HasPrefix(name, "files["):
			h := sha256.New()
			u := Upload{Field: name, Name: p.FileName(), ContentType: p.Header.Get("Content-Type")}
			u.Size, err = io.Copy(h, p)
			u.SHA256 = hex.EncodeToString(h.Sum(nil))
			if u.Size > MaxUpload {
				return nil, nil, errTooLarge
			}
			ups = append(ups, u)
		}
		if err != nil {
			return nil, nil, err
		}
	}
}

func withUploads(r *http.Request, ups []Upload) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), uploadsKey{}, ups))
}

func uploadsOf(r *http.Request) []Upload {
	ups, _ := r.Context().Value(uploadsKey{}).([]Upload)
	return ups
}

// Attachment is a file the fake's CDN serves.
type Attachment struct {
	Name, ContentType string
	Data              []byte
	// Drip sends the body one byte per Drip interval.
	Drip time.Duration
}

type cdnFile struct {
	Attachment
	id, channel, message string
}

// AddAttachment puts a file on the fake CDN as an attachment of message in
// channel and returns the attachment object to put in a MESSAGE_CREATE
// (id, filename, content_type, size, url, proxy_url). Its url is signed
// like Discord's (ex, is, hm) and stops working after ExpireAttachmentURLs.
func (s *Server) AddAttachment(channel, message string, a Attachment) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cdn == nil {
		s.cdn = map[string]*cdnFile{}
	}
	s.nextMsgID++
	f := &cdnFile{Attachment: a, id: strconv.FormatInt(s.nextMsgID, 10), channel: channel, message: message}
	s.cdn[f.id] = f
	return s.attachmentJSONLocked(f)
}

func (s *Server) attachmentJSONLocked(f *cdnFile) map[string]any {
	ex := strconv.FormatInt(int64(s.cdnGen), 16)
	u := s.URL + "/attachments/" + f.channel + "/" + f.id + "/" + url.PathEscape(f.Name) + "?ex=" + ex + "&is=0&hm=" + hex.EncodeToString([]byte(f.id+ex))
	return map[string]any{"id": f.id, "filename": f.Name, "content_type": f.ContentType, "size": len(f.Data), "url": u, "proxy_url": u}
}

// ExpireAttachmentURLs makes every CDN URL handed out so far answer 404, as
// Discord's do when their signature expires; GET .../messages/{id} hands
// out fresh ones.
func (s *Server) ExpireAttachmentURLs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cdnGen++
}

// DeleteAttachments removes the attachments of message from the CDN and
// the message, as when its author deletes it.
func (s *Server) DeleteAttachments(message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, f := range s.cdn {
		if f.message == message {
			delete(s.cdn, id)
		}
	}
}

// CDNRequests counts requests to the CDN, with whether they carried an
// Authorization header (the bot token must never go there).
func (s *Server) CDNRequests() (n int, withAuth int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cdnRequests, s.cdnAuth
}

func (s *Server) handleCDN(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.cdnRequests++
	if r.Header.Get("Authorization") != "" {
		s.cdnAuth++
	}
	f := s.cdn[r.PathValue("att")]
	current := strconv.FormatInt(int64(s.cdnGen), 16)
	s.notify()
	s.mu.Unlock()
	if f == nil || r.URL.Query().Get("ex") != current || r.PathValue("channel") != f.channel {
		http.Error(w, "This content is no longer available.", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", f.ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(f.Data)))
	if f.Drip <= 0 {
		_, _ = w.Write(f.Data)
		return
	}
	fakeserver.Drip(w, r, f.Data, f.Drip, s.ctx.Done())
}

// handleGetMessage answers GET /channels/{channel}/messages/{message} for
// messages with attachments on the CDN, with fresh URLs.
func (s *Server) handleGetMessage(w http.ResponseWriter, r *http.Request, _ []byte) int {
	channel, id := r.PathValue("channel"), r.PathValue("message")
	s.mu.Lock()
	atts := []map[string]any{}
	for _, f := range s.cdn {
		if f.channel == channel && f.message == id {
			atts = append(atts, s.attachmentJSONLocked(f))
		}
	}
	s.mu.Unlock()
	if len(atts) == 0 {
		return writeJSON(w, http.StatusNotFound, map[string]any{"message": "Unknown Message", "code": 10008})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"id": id, "channel_id": channel, "content": "", "attachments": atts})
}
