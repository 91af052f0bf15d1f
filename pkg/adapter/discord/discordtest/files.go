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
	"strings"
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
