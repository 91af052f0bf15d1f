// SPDX-License-Identifier: Apache-2.0

package telegramtest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// MaxDownload is the Bot API's limit for a file a bot downloads (20 MB):
// getFile answers "Bad Request: file is too big" above it.
const MaxDownload = 20 << 20

// File is a file the fake serves through getFile and /file/bot<token>/<path>.
type File struct {
	Data []byte
	// Size, when set, is the size getFile reports instead of len(Data), so
	// that a test can have a file over MaxDownload without allocating it.
	Size int64
	// Drip sends the body one byte per Drip interval: a download that does
	// not end in any useful time.
	Drip time.Duration
}

type storedFile struct {
	File
	path string
}

// AddFile makes fileID downloadable and returns its file_path.
func (s *Server) AddFile(fileID string, f File) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.files == nil {
		s.files = map[string]*storedFile{}
	}
	path := "documents/file_" + strconv.Itoa(len(s.files)) + ".bin"
	s.files[fileID] = &storedFile{File: f, path: path}
	return path
}

// ExpireFile forgets fileID: getFile answers "invalid file_id" and the old
// file_path 404, as for a file_id of another bot or one Telegram dropped.
func (s *Server) ExpireFile(fileID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.files, fileID)
}

func (f *storedFile) size() int64 {
	if f.Size > 0 {
		return f.Size
	}
	return int64(len(f.Data))
}

// getFile answers a File object {file_id, file_unique_id, file_size,
// file_path}.
func (s *Server) getFile(w http.ResponseWriter, p Params) {
	id := p.Get("file_id")
	s.mu.Lock()
	f := s.files[id]
	s.mu.Unlock()
	switch {
	case id == "":
		writeReply(w, Error(400, "Bad Request: file_id is empty"))
	case f == nil:
		writeReply(w, Error(400, "Bad Request: invalid file_id"))
	case f.size() > MaxDownload:
		writeReply(w, Error(400, "Bad Request: file is too big"))
	default:
		writeOK(w, map[string]any{"file_id": id, "file_unique_id": "u" + id, "file_size": f.size(), "file_path": f.path})
	}
}

// download serves /file/bot<token>/<file_path>.
func (s *Server) download(w http.ResponseWriter, r *http.Request, rest string) {
	token, path, ok := strings.Cut(rest, "/")
	if !ok || token != s.Token {
		writeReply(w, NotFound())
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: "download", Params: Params{"file_path": path}, Encoding: "query", At: time.Now()})
	s.notifyLocked()
	var f *storedFile
	for _, sf := range s.files {
		if sf.path == path {
			f = sf
		}
	}
	s.mu.Unlock()
	if f == nil {
		writeReply(w, NotFound())
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(f.Data)))
	if f.Drip <= 0 {
		_, _ = w.Write(f.Data)
		return
	}
	fakeserver.Drip(w, r, f.Data, f.Drip, s.closed)
}

// Upload limits of the Bot API: 10 MB for a photo, 50 MB for other files.
const (
	MaxPhotoUpload = 10 << 20
	MaxUpload      = 50 << 20
)

// Upload is a file received by sendPhoto, sendDocument, sendVoice,
// sendAudio or sendVideo.
type Upload struct {
	MessageID   int64
	Method      string
	ChatID      string
	Field       string
	Name        string
	ContentType string
	Size        int64
	SHA256      string // hex
	Caption     string
	// ReplyTo is reply_parameters.message_id.
	ReplyTo  int64
	ThreadID int64
}

type filePart struct {
	field, name, contentType string
	size                     int64
	sha256                   string
}

func readFileParts(f *multipart.Form) []filePart {
	var out []filePart
	for field, fhs := range f.File {
		for _, fh := range fhs {
			part := filePart{field: field, name: fh.Filename, contentType: fh.Header.Get("Content-Type")}
			if r, err := fh.Open(); err == nil {
				h := sha256.New()
				part.size, _ = io.Copy(h, r)
				part.sha256 = hex.EncodeToString(h.Sum(nil))
				r.Close()
			}
			out = append(out, part)
		}
	}
	return out
}

// Uploads returns the files received so far.
func (s *Server) Uploads() []Upload { return fakeserver.Copy(&s.mu, &s.uploads) }

// upload answers a send<Media> call: the file must come as a multipart part
// named after the method's field (photo, document, voice, audio, video).
func (s *Server) upload(w http.ResponseWriter, method string, p Params, parts []filePart) {
	field := strings.ToLower(strings.TrimPrefix(method, "send"))
	var part *filePart
	for i := range parts {
		if parts[i].field == field {
			part = &parts[i]
		}
	}
	switch {
	case p.Get("chat_id") == "":
		writeReply(w, Error(400, "Bad Request: chat_id is empty"))
		return
	case part == nil:
		writeReply(w, Error(400, "Bad Request: there is no "+field+" in the request"))
		return
	case method == "sendPhoto" && part.size > MaxPhotoUpload:
		writeReply(w, Error(400, "Bad Request: file is too big"))
		return
	case len([]rune(p.Get("caption"))) > 1024:
		writeReply(w, Error(400, "Bad Request: message caption is too long"))
		return
	}
	u := Upload{Method: method, ChatID: p.Get("chat_id"), Field: field, Name: part.name, ContentType: part.contentType,
		Size: part.size, SHA256: part.sha256, Caption: p.Get("caption"), ThreadID: p.Int("message_thread_id")}
	if rp := p.Get("reply_parameters"); rp != "" {
		var v struct {
			MessageID int64 `json:"message_id"`
		}
		if json.Unmarshal([]byte(rp), &v) != nil {
			writeReply(w, Error(400, "Bad Request: can't parse reply parameters JSON object"))
			return
		}
		u.ReplyTo = v.MessageID
	}
	s.mu.Lock()
	s.nextMessage++
	u.MessageID = s.nextMessage
	s.uploads = append(s.uploads, u)
	s.notifyLocked()
	s.mu.Unlock()
	writeOK(w, map[string]any{"message_id": u.MessageID, "chat": map[string]any{"id": p.Int("chat_id")}})
}
