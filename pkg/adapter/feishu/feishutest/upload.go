// SPDX-License-Identifier: Apache-2.0

package feishutest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// Upload limits of the platform: images at most 10 MB, files 30 MB, never
// empty.
const (
	MaxImageBytes = 10 << 20
	MaxFileBytes  = 30 << 20
)

// Upload is a file the fake received on POST /open-apis/im/v1/images or
// /open-apis/im/v1/files.
type Upload struct {
	Key      string // the image_key or file_key answered
	Endpoint string // "images" or "files"
	// ImageType (images), FileType, FileName and Duration (files) are the
	// form fields.
	ImageType, FileType, FileName, Duration string
	// Name and ContentType are those of the file part.
	Name, ContentType string
	Size              int64
	SHA256            string
}

// Uploads returns the files received, in order.
func (s *Server) Uploads() []Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Upload, 0, len(s.uploads))
	for _, u := range s.uploads {
		out = append(out, *u)
	}
	return out
}

// upload returns the upload that issued key, or nil.
func (s *Server) upload(key string) *Upload {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range s.uploads {
		if u.Key == key {
			return u
		}
	}
	return nil
}

var fileTypes = map[string]bool{"opus": true, "mp4": true, "pdf": true, "doc": true, "xls": true, "ppt": true, "stream": true}

// handleUpload serves both upload endpoints: multipart with the form
// fields of the platform, answering {"data":{"image_key"|"file_key"}}.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	s.countRequest(r)
	if !s.authorized(w, r) {
		return
	}
	if _, handled := s.nextFailure(w); handled {
		return
	}
	images := r.URL.Path == "/open-apis/im/v1/images"
	limit, field, endpoint := int64(MaxFileBytes), "file", "files"
	if images {
		limit, field, endpoint = MaxImageBytes, "image", "images"
	}
	bad := func(msg string) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"code": 234001, "msg": "Invalid request param: " + msg})
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit+64<<10)
	if err := r.ParseMultipartForm(1 << 20); err != nil {
		bad(err.Error())
		return
	}
	defer r.MultipartForm.RemoveAll()
	f, fh, err := r.FormFile(field)
	if err != nil {
		bad("no " + field + " part")
		return
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	switch {
	case err != nil:
		bad(err.Error())
		return
	case n == 0:
		bad("empty file")
		return
	case n > limit:
		bad(fmt.Sprintf("file of %d bytes exceeds %d", n, limit))
		return
	}
	u := &Upload{Endpoint: endpoint, Name: fh.Filename, ContentType: fh.Header.Get("Content-Type"), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}
	keyField := "file_key"
	if images {
		u.ImageType = r.FormValue("image_type")
		if u.ImageType != "message" && u.ImageType != "avatar" {
			bad("image_type")
			return
		}
		keyField = "image_key"
	} else {
		u.FileType, u.FileName, u.Duration = r.FormValue("file_type"), r.FormValue("file_name"), r.FormValue("duration")
		if !fileTypes[u.FileType] || u.FileName == "" {
			bad("file_type or file_name")
			return
		}
	}
	s.mu.Lock()
	s.rest.nextMsg++
	if images {
		u.Key = fmt.Sprintf("img_v3_up%d", s.rest.nextMsg)
	} else {
		u.Key = fmt.Sprintf("file_v3_up%d", s.rest.nextMsg)
	}
	s.uploads = append(s.uploads, u)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"code": 0, "msg": "success", "data": map[string]string{keyField: u.Key}})
}

// mediaContent checks the content of an image, file, audio or post
// message against the uploads, returning its key and text (a post's).
func (s *Server) mediaContent(msgType, content string) (key, text string, err error) {
	var c struct {
		ImageKey string `json:"image_key"`
		FileKey  string `json:"file_key"`
		ZhCN     struct {
			Content [][]struct {
				Tag      string `json:"tag"`
				ImageKey string `json:"image_key"`
				Text     string `json:"text"`
			} `json:"content"`
		} `json:"zh_cn"`
	}
	if err := json.Unmarshal([]byte(content), &c); err != nil {
		return "", "", fmt.Errorf("content is not JSON: %w", err)
	}
	want := "files"
	switch msgType {
	case "image":
		key, want = c.ImageKey, "images"
	case "file", "audio":
		key = c.FileKey
	case "post":
		want = "images"
		for _, para := range c.ZhCN.Content {
			for _, e := range para {
				switch e.Tag {
				case "img":
					key = e.ImageKey
				case "text":
					text += e.Text
				}
			}
		}
		if key == "" {
			return "", text, nil
		}
	}
	u := s.upload(key)
	if u == nil || u.Endpoint != want {
		return "", "", fmt.Errorf("%s key %q was not uploaded to %s", msgType, key, want)
	}
	if msgType == "audio" && u.FileType != "opus" {
		return "", "", fmt.Errorf("audio message with a %s file", u.FileType)
	}
	return key, text, nil
}
