// SPDX-License-Identifier: Apache-2.0

package telegramtest

import (
	"net/http"
	"strconv"
	"strings"
	"time"
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
	fl, _ := w.(http.Flusher)
	for i := range f.Data {
		if _, err := w.Write(f.Data[i : i+1]); err != nil {
			return
		}
		if fl != nil {
			fl.Flush()
		}
		select {
		case <-time.After(f.Drip):
		case <-r.Context().Done():
			return
		case <-s.closed:
			return
		}
	}
}
