// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"os"
	"path/filepath"
	"testing"
)

func TestMultipartFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("file bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	body, ct, length, err := MultipartFile([]FormField{{Name: "caption", Value: "hi"}, {Name: "payload_json", Value: "{}", ContentType: "application/json"}},
		FormFile{Field: "files[0]", Name: `a "b".png`, ContentType: "image/png"}, f, 10)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(body)
	if int64(len(raw)) != length {
		t.Fatalf("length %d, body %d bytes", length, len(raw))
	}
	_, params, _ := mime.ParseMediaType(ct)
	form, err := multipart.NewReader(bytes.NewReader(raw), params["boundary"]).ReadForm(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if form.Value["caption"][0] != "hi" || form.Value["payload_json"][0] != "{}" {
		t.Fatalf("values %v", form.Value)
	}
	fh := form.File["files[0]"][0]
	r, _ := fh.Open()
	got, _ := io.ReadAll(r)
	if fh.Filename != `a "b".png` || fh.Header.Get("Content-Type") != "image/png" || string(got) != "file bytes" {
		t.Fatalf("file %q %v %q", fh.Filename, fh.Header, got)
	}
}
