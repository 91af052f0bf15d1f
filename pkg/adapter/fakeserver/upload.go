// SPDX-License-Identifier: Apache-2.0

package fakeserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"time"
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

// PostFile posts data as the file part field (named name) of a
// multipart/form-data body to url and decodes the JSON answer, as a
// client of a fake's upload API.
func PostFile(url, field, name string, data []byte) (map[string]any, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile(field, name)
	if err != nil {
		return nil, err
	}
	_, _ = fw.Write(data)
	if err := mw.Close(); err != nil {
		return nil, err
	}
	resp, err := http.Post(url, mw.FormDataContentType(), &buf)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("upload answer: %w", err)
	}
	return out, nil
}

// Stalls GETs url and reports nil if its headers come but its body does
// not end within wait (a body ServeBytes drips).
func Stalls(url string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("no headers within %s: %w", wait, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("body of %d bytes ended with %v, not the deadline", len(b), err)
	}
	return nil
}
