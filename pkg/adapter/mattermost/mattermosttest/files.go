// SPDX-License-Identifier: Apache-2.0

package mattermosttest

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// DefaultMaxFileSize is the server's default FileSettings.MaxFileSize:
// 100 MiB. POST /api/v4/files compares it with the whole request's
// Content-Length.
const DefaultMaxFileSize = 100 << 20

// PostFileIDsMaxRunes bounds the JSON array of a post's file_ids (300
// characters: ten 26-character ids).
const PostFileIDsMaxRunes = 300

// FileInfo is a file's metadata in the API's JSON shape, as in a post's
// metadata.files and in the file_infos of an upload's answer.
type FileInfo struct {
	ID        string `json:"id"`
	UserID    string `json:"user_id"`
	PostID    string `json:"post_id"`
	ChannelID string `json:"channel_id"`
	CreateAt  int64  `json:"create_at"`
	Name      string `json:"name"`
	Extension string `json:"extension"`
	Size      int64  `json:"size"`
	MimeType  string `json:"mime_type"`
	Width     int    `json:"width,omitempty"`
	Height    int    `json:"height,omitempty"`
}

// File is a file a user attaches to a post with PostFiles.
type File struct {
	Name, MimeType string
	Data           []byte
	Width, Height  int
	// Drip sends the download's body one byte per Drip interval.
	Drip time.Duration
}

type file struct {
	info FileInfo
	data []byte
	drip time.Duration
}

// Upload is a file the bot uploaded with POST /api/v4/files.
type Upload struct {
	ID, ChannelID, Name, ContentType string
	Size                             int64
	SHA256                           string // hex
}

// PostFiles makes user post text with files in channel, as a user of the
// web app does (upload, then a post with their file_ids): the post carries
// file_ids and metadata.files, and its posted event is sent to every
// websocket.
func (s *Server) PostFiles(channel, userID, text string, files ...File) Post {
	return s.PostType(channel, userID, text, "", files...)
}

// PostType is PostFiles with the post's type set (custom_voice for a
// voice message, another custom_ type for a plugin's post).
func (s *Server) PostType(channel, userID, text, typ string, files ...File) Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, f := range files {
		ids = append(ids, s.storeLocked(channel, userID, f.Name, f.MimeType, f.Data, f.Drip, f.Width, f.Height).ID)
	}
	p := s.addLocked(channel, userID, text, "")
	p.Type = typ
	s.attachLocked(p, userID, ids)
	s.broadcastLocked(p, false)
	return *p
}

// storeLocked stores a file not yet attached to a post; s.mu held.
func (s *Server) storeLocked(channel, userID, name, mimeType string, data []byte, drip time.Duration, w, h int) *FileInfo {
	f := &file{data: data, drip: drip, info: FileInfo{
		ID: newID(), UserID: userID, ChannelID: channel, CreateAt: time.Now().UnixMilli(),
		Name: name, Extension: strings.TrimPrefix(path.Ext(name), "."), Size: int64(len(data)),
		MimeType: mimeType, Width: w, Height: h,
	}}
	s.files[f.info.ID] = f
	return &f.info
}

// attachLocked attaches the files ids to p as the server does: only files
// of the same creator and channel not yet attached to a post; others are
// dropped from the post. s.mu held.
func (s *Server) attachLocked(p *Post, creator string, ids []string) {
	for _, id := range ids {
		f := s.files[id]
		if f == nil || f.info.UserID != creator || f.info.ChannelID != p.ChannelID || f.info.PostID != "" {
			continue
		}
		f.info.PostID = p.ID
		p.FileIDs = append(p.FileIDs, id)
		if p.Metadata == nil {
			p.Metadata = &Metadata{}
		}
		p.Metadata.Files = append(p.Metadata.Files, f.info)
	}
}

// DeleteFile removes a file: its download answers 404, as after the post
// was deleted or the data retention policy removed it.
func (s *Server) DeleteFile(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.files, id)
}

// SetMaxFileSize sets FileSettings.MaxFileSize.
func (s *Server) SetMaxFileSize(n int64) { fakeserver.Set(&s.mu, &s.maxFile, n) }

// Uploads returns the files the bot uploaded, oldest first.
func (s *Server) Uploads() []Upload { return fakeserver.Copy(&s.mu, &s.uploads) }

// getFile answers GET /api/v4/files/{file_id} with the file's bytes, to a
// member of its channel; 404 for an unknown or deleted file.
func (s *Server) getFile(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	f := s.files[r.PathValue("file")]
	var member bool
	if f != nil {
		_, member = s.channels[f.info.ChannelID]
	}
	s.mu.Unlock()
	switch {
	case f == nil:
		writeError(w, http.StatusNotFound, "app.file_info.get.app_error", "Unable to get the file info.")
		return
	case !member:
		writeError(w, http.StatusForbidden, "api.context.permissions.app_error", "You do not have the appropriate permissions.")
		return
	}
	w.Header().Set("Content-Type", f.info.MimeType)
	w.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": f.info.Name}))
	w.WriteHeader(http.StatusOK)
	if f.drip <= 0 {
		_, _ = w.Write(f.data)
		return
	}
	fakeserver.Drip(w, r, f.data, f.drip, s.ctx.Done())
}

// uploadFile answers POST /api/v4/files, multipart/form-data with
// channel_id before the files parts (the server reads the form as a
// stream), 201 with file_infos and client_ids. A request whose
// Content-Length is over MaxFileSize is answered 413.
func (s *Server) uploadFile(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	maxSize := s.maxFile
	s.mu.Unlock()
	if r.ContentLength > maxSize {
		writeError(w, http.StatusRequestEntityTooLarge, "api.file.upload_file.too_large_detailed.app_error",
			"Unable to upload file. File is too large.")
		return
	}
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || params["boundary"] == "" {
		writeError(w, http.StatusBadRequest, "api.file.upload_file.read_request.app_error", "not multipart")
		return
	}
	mr := multipart.NewReader(io.LimitReader(r.Body, maxSize+1), params["boundary"])
	var channel string
	var clientIDs []string
	var infos []FileInfo
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "api.file.upload_file.read_request.app_error", err.Error())
			return
		}
		switch p.FormName() {
		case "channel_id":
			b, _ := io.ReadAll(io.LimitReader(p, 64))
			channel = string(b)
		case "client_ids":
			b, _ := io.ReadAll(io.LimitReader(p, 64))
			clientIDs = append(clientIDs, string(b))
		case "files":
			if channel == "" {
				writeError(w, http.StatusBadRequest, "api.context.invalid_url_param.app_error", "channel_id must come before the files")
				return
			}
			s.mu.Lock()
			_, member := s.channels[channel]
			s.mu.Unlock()
			if !member {
				writeError(w, http.StatusForbidden, "api.context.permissions.app_error", "no permission to upload_file")
				return
			}
			data, err := io.ReadAll(p)
			if err != nil {
				writeError(w, http.StatusBadRequest, "api.file.upload_file.read_request.app_error", err.Error())
				return
			}
			if int64(len(data)) > maxSize {
				writeError(w, http.StatusRequestEntityTooLarge, "api.file.upload_file.too_large_detailed.app_error",
					"Unable to upload file. File is too large.")
				return
			}
			sum := sha256.Sum256(data)
			ct := p.Header.Get("Content-Type")
			s.mu.Lock()
			info := s.storeLocked(channel, BotID, p.FileName(), ct, data, 0, 0, 0)
			s.uploads = append(s.uploads, Upload{ID: info.ID, ChannelID: channel, Name: info.Name, ContentType: ct,
				Size: info.Size, SHA256: hex.EncodeToString(sum[:])})
			infos = append(infos, *info)
			s.notify()
			s.mu.Unlock()
		}
	}
	if len(infos) == 0 {
		writeError(w, http.StatusBadRequest, "api.file.upload_file.read_request.app_error", "no files")
		return
	}
	if clientIDs == nil {
		clientIDs = []string{}
	}
	writeJSON(w, http.StatusCreated, map[string]any{"file_infos": infos, "client_ids": clientIDs})
}
