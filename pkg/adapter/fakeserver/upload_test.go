// SPDX-License-Identifier: Apache-2.0

package fakeserver

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"mime/multipart"
	"net/http/httptest"
	"testing"
)

func TestReadFilePart(t *testing.T) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("type", "image")
	fw, _ := mw.CreateFormFile("media", "a.png")
	_, _ = fw.Write([]byte("png bytes"))
	mw.Close()
	r := httptest.NewRequest("POST", "/", bytes.NewReader(buf.Bytes()))
	r.Header.Set("Content-Type", mw.FormDataContentType())
	fp, err := ReadFilePart(r, "media")
	sum := sha256.Sum256([]byte("png bytes"))
	if err != nil || fp.Name != "a.png" || fp.Size != 9 || fp.SHA256 != hex.EncodeToString(sum[:]) || fp.ContentType != "application/octet-stream" {
		t.Fatalf("part %+v, %v", fp, err)
	}
	r = httptest.NewRequest("POST", "/", bytes.NewReader(buf.Bytes()))
	r.Header.Set("Content-Type", mw.FormDataContentType())
	if _, err := ReadFilePart(r, "file"); !errors.Is(err, ErrNoFilePart) {
		t.Fatalf("other field: %v", err)
	}
	if _, err := ReadFilePart(httptest.NewRequest("POST", "/", nil), "media"); err == nil {
		t.Fatal("a body that is not multipart was read")
	}
}
