// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/textproto"
	"os"
	"strings"
)

// FormField is a plain field of a multipart/form-data upload.
type FormField struct {
	Name, Value string
	// ContentType, when set, is sent as the part's Content-Type (Discord's
	// payload_json may carry application/json).
	ContentType string
}

// FormFile is the file part of a multipart/form-data upload.
type FormFile struct {
	Field, Name, ContentType string
}

// MultipartFile builds a multipart/form-data body of fields followed by the
// file f (size bytes, from its start), streamed from disk rather than read
// into memory. It returns the body, its Content-Type and its exact length,
// to be set as the request's ContentLength. The caller closes f after the
// request.
func MultipartFile(fields []FormField, file FormFile, f *os.File, size int64) (body io.Reader, contentType string, length int64, err error) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, fl := range fields {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="%s"`, quoteField(fl.Name)))
		if fl.ContentType != "" {
			h.Set("Content-Type", fl.ContentType)
		}
		pw, err := w.CreatePart(h)
		if err != nil {
			return nil, "", 0, fmt.Errorf("multipart: %w", err)
		}
		if _, err := io.WriteString(pw, fl.Value); err != nil {
			return nil, "", 0, fmt.Errorf("multipart: %w", err)
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="%s"; filename="%s"`, quoteField(file.Field), quoteField(file.Name)))
	ct := file.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	if _, err := w.CreatePart(h); err != nil {
		return nil, "", 0, fmt.Errorf("multipart: %w", err)
	}
	head := bytes.Clone(buf.Bytes())
	buf.Reset()
	if err := w.Close(); err != nil {
		return nil, "", 0, fmt.Errorf("multipart: %w", err)
	}
	tail := bytes.Clone(buf.Bytes())
	body = io.MultiReader(bytes.NewReader(head), io.NewSectionReader(f, 0, size), bytes.NewReader(tail))
	return body, w.FormDataContentType(), int64(len(head)) + size + int64(len(tail)), nil
}

var fieldQuoter = strings.NewReplacer("\\", "\\\\", `"`, "\\\"", "\r", "", "\n", "")

func quoteField(s string) string { return fieldQuoter.Replace(s) }
