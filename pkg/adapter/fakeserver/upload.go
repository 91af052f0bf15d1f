// SPDX-License-Identifier: Apache-2.0

package fakeserver

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
)

// FilePart is the file part of a multipart/form-data upload, as a fake
// records it: its bytes are hashed, not kept.
type FilePart struct {
	Name, ContentType string
	Size              int64
	SHA256            string
}

// ErrNoFilePart is ReadFilePart's error for a form without the file part.
var ErrNoFilePart = errors.New("no file part")

// ReadFilePart streams the multipart/form-data body of r and returns the
// file part named field (the last one, if several).
func ReadFilePart(r *http.Request, field string) (FilePart, error) {
	mr, err := r.MultipartReader()
	if err != nil {
		return FilePart{}, err
	}
	var fp *FilePart
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return FilePart{}, err
		}
		if p.FormName() != field || p.FileName() == "" {
			continue
		}
		h := sha256.New()
		n, err := io.Copy(h, p)
		if err != nil {
			return FilePart{}, err
		}
		fp = &FilePart{Name: p.FileName(), ContentType: p.Header.Get("Content-Type"), Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}
	}
	if fp == nil {
		return FilePart{}, ErrNoFilePart
	}
	return *fp, nil
}
