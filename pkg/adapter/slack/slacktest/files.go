// SPDX-License-Identifier: Apache-2.0

package slacktest

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// Fault points of the file calls.
const (
	// GetUploadURL is files.getUploadURLExternal.
	GetUploadURL fakeserver.Point = "files.getUploadURLExternal"
	// UploadBytes is the POST of the bytes to the upload_url. Reject(413)
	// answers as a file over the limit.
	UploadBytes fakeserver.Point = "upload_url"
	// Complete is files.completeUploadExternal. Blackhole and Drop share
	// the file (the user sees it) before they fail the request.
	Complete fakeserver.Point = "files.completeUploadExternal"
	// Download is a GET of url_private(_download).
	Download fakeserver.Point = "download"
)

// loginPage is what Slack serves, with status 200, for a file URL the
// token may not read (no files:read scope): its sign-in page.
const loginPage = "<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to your workspace</body></html>"

// File is a file the fake hosts for downloads.
type File struct {
	ID       string // default F…
	Name     string
	Mimetype string
	Subtype  string // slack_audio for a voice clip
	Data     []byte
	// Drip, when set, writes the body one byte per Drip (a slow body).
	Drip time.Duration
	// OffHost answers the download with a redirect to another host name
	// (localhost instead of 127.0.0.1), as Slack does to its sign-in page.
	OffHost bool
}

// Upload is a file shared through the external upload flow.
type Upload struct {
	FileID   string
	Filename string // of files.getUploadURLExternal
	Title    string // of files.completeUploadExternal
	Length   int64  // declared
	Size     int64  // received
	SHA256   string
	// ContentType is the Content-Type of the POST to the upload_url.
	ContentType string
	Channel     string
	ThreadTS    string
	Caption     string // initial_comment, as sent
	TS          string // the ts of the message sharing it
}

type pendingUpload struct {
	Upload
	received bool
}

// AddFile hosts f and returns its file object for Event.Files, as Slack
// puts it in a file_share message event.
func (s *Server) AddFile(f File) map[string]any {
	s.mu.Lock()
	s.seq++
	f.ID = cmp.Or(f.ID, fmt.Sprintf("F%06d", s.seq))
	if s.files == nil {
		s.files = map[string]*File{}
	}
	s.files[f.ID] = &f
	s.mu.Unlock()
	base := s.http.URL + "/files-pri/T1-" + f.ID + "/"
	obj := map[string]any{
		"id": f.ID, "name": f.Name, "title": f.Name, "mimetype": f.Mimetype, "size": len(f.Data), "mode": "hosted",
		"is_external": false, "url_private": base + url.PathEscape(f.Name),
		"url_private_download": base + "download/" + url.PathEscape(f.Name),
	}
	if f.Subtype != "" {
		obj["subtype"] = f.Subtype
	}
	return obj
}

// RemoveFile deletes a hosted file: its URLs answer 404.
func (s *Server) RemoveFile(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.files, id)
}

// SetFilesRead grants or withdraws the bot token's files:read scope.
// Without it a download answers the sign-in page (200, text/html).
func (s *Server) SetFilesRead(ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.noFilesRead = !ok
}

// Downloads returns how many downloads were served and how many requests
// reached the off-host sign-in page carrying an Authorization header (a
// leaked token).
func (s *Server) Downloads() (served, leaked int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.downloads, s.leaked
}

// Uploads returns the files shared, in order.
func (s *Server) Uploads() []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Upload
	for _, id := range s.uploadOrder {
		if u := s.uploads[id]; u.TS != "" {
			out = append(out, u.Upload)
		}
	}
	return out
}

func (s *Server) handleDownload(w http.ResponseWriter, r *http.Request) {
	if s.serveIf(w, r, Download, fakeserver.KindReject, fakeserver.KindRateLimit, fakeserver.KindBlackhole, fakeserver.KindDrop) {
		return
	}
	id := strings.TrimPrefix(r.PathValue("team_file"), "T1-")
	s.mu.Lock()
	f := s.files[id]
	noScope := s.noFilesRead
	s.mu.Unlock()
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case tok != s.opts.BotToken || noScope:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, loginPage)
		return
	case f == nil:
		http.Error(w, "file not found", http.StatusNotFound)
		return
	case f.OffHost:
		http.Redirect(w, r, strings.Replace(s.http.URL, "127.0.0.1", "localhost", 1)+"/signin?redir="+url.QueryEscape(r.URL.Path), http.StatusFound)
		return
	}
	s.mu.Lock()
	s.downloads++
	s.mu.Unlock()
	w.Header().Set("Content-Type", f.Mimetype)
	w.Header().Set("Content-Length", strconv.Itoa(len(f.Data)))
	if f.Drip <= 0 {
		_, _ = w.Write(f.Data)
		return
	}
	fakeserver.Drip(w, r, f.Data, f.Drip, s.ctx.Done())
}

func (s *Server) handleSignin(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" {
		s.mu.Lock()
		s.leaked++
		s.mu.Unlock()
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, loginPage)
}

// handleGetUploadURL serves files.getUploadURLExternal (form parameters
// filename and length).
func (s *Server) handleGetUploadURL(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "invalid_form_data"})
		return
	}
	if !s.auth(w, r, s.opts.BotToken, s.opts.AppToken) || s.serveIf(w, r, GetUploadURL, fakeserver.KindReject, fakeserver.KindRateLimit, fakeserver.KindBlackhole, fakeserver.KindDrop) {
		return
	}
	name := r.Form.Get("filename")
	n, err := strconv.ParseInt(r.Form.Get("length"), 10, 64)
	switch {
	case name == "" || err != nil || n <= 0:
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "missing_argument"})
		return
	case s.opts.MaxUploadBytes > 0 && n > s.opts.MaxUploadBytes:
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "file_upload_size_restricted"})
		return
	}
	s.mu.Lock()
	s.seq++
	id := fmt.Sprintf("FU%06d", s.seq)
	if s.uploads == nil {
		s.uploads = map[string]*pendingUpload{}
	}
	s.uploads[id] = &pendingUpload{Upload: Upload{FileID: id, Filename: name, Length: n}}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "upload_url": s.http.URL + "/upload/v1/" + id, "file_id": id})
}

// handleUploadBytes receives the bytes: raw, exactly the declared length.
func (s *Server) handleUploadBytes(w http.ResponseWriter, r *http.Request) {
	if s.serveIf(w, r, UploadBytes, fakeserver.KindReject, fakeserver.KindRateLimit, fakeserver.KindBlackhole, fakeserver.KindDrop) {
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	u := s.uploads[id]
	s.mu.Unlock()
	if u == nil {
		http.Error(w, "unknown upload", http.StatusNotFound)
		return
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(r.Body, u.Length+1))
	if err != nil || n != u.Length {
		http.Error(w, fmt.Sprintf("received %d bytes, declared %d", n, u.Length), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	u.Size, u.SHA256, u.ContentType, u.received = n, hex.EncodeToString(h.Sum(nil)), r.Header.Get("Content-Type"), true
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain")
	_, _ = fmt.Fprintf(w, "OK - %d", n)
}

// handleComplete serves files.completeUploadExternal: it shares each
// received file in channel_id with one message (initial_comment as its
// text).
func (s *Server) handleComplete(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Files []struct {
			ID    string `json:"id"`
			Title string `json:"title"`
		} `json:"files"`
		ChannelID      string `json:"channel_id"`
		ThreadTS       string `json:"thread_ts"`
		InitialComment string `json:"initial_comment"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&b); err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "invalid_json"})
		return
	}
	if !s.auth(w, r, s.opts.BotToken, s.opts.AppToken) || s.rejects(w, r, Complete) {
		return
	}
	if len(b.Files) == 0 {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "invalid_arguments"})
		return
	}
	s.mu.Lock()
	ts := s.nextTSLocked()
	var out []map[string]any
	var ids []string
	for _, f := range b.Files {
		u := s.uploads[f.ID]
		if u == nil || !u.received || u.TS != "" {
			s.mu.Unlock()
			writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "file_not_found"})
			return
		}
		ids = append(ids, f.ID)
	}
	for _, f := range b.Files {
		u := s.uploads[f.ID]
		u.Title, u.Channel, u.ThreadTS, u.Caption, u.TS = f.Title, b.ChannelID, b.ThreadTS, b.InitialComment, ts
		s.uploadOrder = append(s.uploadOrder, f.ID)
		share := map[string]any{b.ChannelID: []map[string]any{{"ts": ts}}}
		out = append(out, map[string]any{"id": f.ID, "title": f.Title, "shares": map[string]any{"public": share}})
	}
	s.msgs = append(s.msgs, &Message{Channel: b.ChannelID, Text: b.InitialComment, ThreadTS: b.ThreadTS, TS: ts, FileIDs: ids})
	s.notify()
	s.mu.Unlock()
	if s.fails(w, r, Complete) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "files": out})
}
