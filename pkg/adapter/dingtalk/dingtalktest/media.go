// SPDX-License-Identifier: Apache-2.0

package dingtalktest

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// Upload limits of media/upload by type, as DingTalk documents them.
var UploadLimits = map[string]int64{"image": 20 << 20, "file": 20 << 20, "video": 20 << 20, "voice": 2 << 20}

// Errcodes of media/upload.
const (
	// ErrCodeFileSize is "invalid file size": over the type's limit.
	ErrCodeFileSize = 40006
	// ErrCodeToken is "invalid access_token".
	ErrCodeToken = 40014
)

// File is a file users sent to the robot, served by downloadCode.
type File struct {
	Data []byte
	// Expired makes robot/messageFiles/download refuse the code.
	Expired bool
}

// Upload is a file accepted by media/upload.
type Upload struct {
	MediaID string
	Type    string // image, voice, video or file
	// FilePart is the "media" part: its filename, type, size and hash.
	fakeserver.FilePart
}

// AddFile registers data as a received file and returns its downloadCode.
func (s *Server) AddFile(data []byte) string {
	code := newID("dc")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[code] = &File{Data: data}
	return code
}

// ExpireFile makes robot/messageFiles/download refuse code, as DingTalk
// does for an expired or wrong downloadCode.
func (s *Server) ExpireFile(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.files[code]; f != nil {
		f.Expired = true
	}
}

// ExpireLinks makes every downloadUrl handed out answer 403, as the
// storage does once the link's signature expired.
func (s *Server) ExpireLinks() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.linksDead = true
}

// SlowDownloads makes downloads write one byte per every (0: at once).
func (s *Server) SlowDownloads(every time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slow = every
}

// FailUploads answers the next uploads with these errcodes, one each.
func (s *Server) FailUploads(errcodes ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failUp = append(s.failUp, errcodes...)
}

// Uploads returns the files media/upload accepted so far.
func (s *Server) Uploads() []Upload { return fakeserver.Copy(&s.mu, &s.uploads) }

// downloadCode answers robot/messageFiles/download {downloadCode,
// robotCode} with a downloadUrl.
func (s *Server) downloadCode(w http.ResponseWriter, r *http.Request) {
	var req struct {
		DownloadCode string `json:"downloadCode"`
		RobotCode    string `json:"robotCode"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.DownloadCode == "" || req.RobotCode == "" {
		apiError(w, 400, "MissingParameter", "downloadCode and robotCode are required")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.tokens[r.Header.Get("x-acs-dingtalk-access-token")] {
		apiError(w, 401, "InvalidAuthentication", "access token is invalid or expired")
		return
	}
	f := s.files[req.DownloadCode]
	if f == nil || f.Expired || req.RobotCode != s.opts.ClientID {
		apiError(w, 400, "InvalidParameter", "downloadCode is wrong or expired")
		return
	}
	id := newID("f")
	s.links[id] = req.DownloadCode
	writeJSON(w, 200, map[string]string{"downloadUrl": s.URL + "/file/" + id + "?Expires=300&Signature=fake"})
}

// download serves a downloadUrl, without the access token.
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	code, ok := s.links[r.PathValue("id")]
	dead, slow := s.linksDead, s.slow
	var data []byte
	if f := s.files[code]; ok && f != nil {
		data = f.Data
	}
	s.mu.Unlock()
	if !ok || dead || r.Header.Get("x-acs-dingtalk-access-token") != "" {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, "<Error><Code>AccessDenied</Code><Message>Request has expired.</Message></Error>")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	fakeserver.ServeBytes(w, r, data, slow, s.closed)
}

// upload is media/upload?access_token=&type=, a multipart/form-data body
// whose file part is "media". It answers HTTP 200 with an errcode.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	typ := r.URL.Query().Get("type")
	limit, ok := UploadLimits[typ]
	s.mu.Lock()
	tokenOK := s.tokens[r.URL.Query().Get("access_token")]
	s.mu.Unlock()
	switch {
	case !tokenOK:
		writeJSON(w, 200, map[string]any{"errcode": ErrCodeToken, "errmsg": "不合法的access_token"})
		return
	case !ok:
		writeJSON(w, 200, map[string]any{"errcode": 40004, "errmsg": "不合法的媒体文件类型"})
		return
	}
	fp, err := fakeserver.ReadFilePart(r, "media")
	if errors.Is(err, fakeserver.ErrNoFilePart) {
		writeJSON(w, 200, map[string]any{"errcode": 41000, "errmsg": "缺少media参数"})
		return
	}
	if err != nil {
		writeJSON(w, 200, map[string]any{"errcode": 40035, "errmsg": "不合法的参数: " + err.Error()})
		return
	}
	up := Upload{MediaID: "@" + newID("lA"), Type: typ, FilePart: fp}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.changedLocked()
	switch {
	case len(s.failUp) > 0:
		code := s.failUp[0]
		s.failUp = s.failUp[1:]
		writeJSON(w, 200, map[string]any{"errcode": code, "errmsg": "scripted failure"})
	case up.Size > limit:
		writeJSON(w, 200, map[string]any{"errcode": ErrCodeFileSize, "errmsg": "不合法的文件大小"})
	default:
		s.uploads = append(s.uploads, up)
		s.media[up.MediaID] = up
		writeJSON(w, 200, map[string]any{"errcode": 0, "errmsg": "ok", "media_id": up.MediaID, "type": typ, "created_at": time.Now().UnixMilli()})
	}
}

// PictureContent is the content of a picture message.
func PictureContent(code string) map[string]string {
	return map[string]string{"downloadCode": code, "pictureDownloadCode": "pdc" + code}
}

// FileContent is the content of a file message.
func FileContent(code, name string) map[string]string {
	return map[string]string{"downloadCode": code, "fileName": name, "spaceId": "1", "fileId": "fid"}
}

// AudioContent is the content of an audio message, with DingTalk's
// transcript and its length in milliseconds.
func AudioContent(code, recognition string, ms int) map[string]any {
	return map[string]any{"downloadCode": code, "recognition": recognition, "duration": ms}
}

// VideoContent is the content of a video message.
func VideoContent(code string, ms int) map[string]any {
	return map[string]any{"downloadCode": code, "duration": ms, "videoType": "mp4"}
}

// RichTextContent is the content of a richText message: items are texts,
// or pictures when they start with "dc" (a downloadCode).
func RichTextContent(items ...string) map[string]any {
	var rt []map[string]string
	for _, it := range items {
		if len(it) > 2 && it[:2] == "dc" {
			rt = append(rt, map[string]string{"type": "picture", "downloadCode": it, "pictureDownloadCode": "p" + it})
		} else {
			rt = append(rt, map[string]string{"text": it})
		}
	}
	return map[string]any{"richText": rt}
}
