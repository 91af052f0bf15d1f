// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/message"
)

func TestUploads(t *testing.T) {
	var u Uploads
	if _, ok := u.Get("k", "c"); ok {
		t.Fatal("empty Uploads found something")
	}
	u.Put("k", "c", "f1")
	if ref, ok := u.Get("k", "c"); !ok || ref != "f1" {
		t.Fatalf("Get = %q, %v", ref, ok)
	}
	if _, ok := u.Get("k", "other chat"); ok {
		t.Fatal("an upload of another chat was returned")
	}
	u.Put("", "c", "f2")
	if _, ok := u.Get("", "c"); ok {
		t.Fatal("an empty key was remembered")
	}
	u.Forget("k")
	if _, ok := u.Get("k", "c"); ok {
		t.Fatal("forgotten upload returned")
	}
	// Bounded: the oldest go first.
	for i := range maxRemembered + 1 {
		u.Put(strconv.Itoa(i), "c", "f")
	}
	if _, ok := u.Get("0", "c"); ok {
		t.Fatal("the oldest upload was kept past the bound")
	}
	if _, ok := u.Get(strconv.Itoa(maxRemembered), "c"); !ok || u.r.Len() != maxRemembered || len(u.r.order) != maxRemembered {
		t.Fatalf("%d uploads, %d keys in order", u.r.Len(), len(u.r.order))
	}
	// Put again under a kept key does not grow the order.
	u.Put("1", "c", "g")
	if len(u.r.order) != maxRemembered {
		t.Fatalf("%d keys in order", len(u.r.order))
	}
}

func TestOpenMediaAndUploadTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.bin")
	if err := os.WriteFile(path, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, size, err := OpenMedia(&message.OutboundMedia{Path: path})
	if err != nil || size != 3 {
		t.Fatalf("OpenMedia = %d, %v", size, err)
	}
	f.Close()
	_, _, err = OpenMedia(&message.OutboundMedia{Path: path + ".gone"})
	if !errors.Is(err, ErrPermanent) {
		t.Fatalf("missing file: %v", err)
	}
	if d := UploadTimeout(time.Second, 10*uploadRate); d != 11*time.Second {
		t.Fatalf("UploadTimeout = %v", d)
	}
}

func TestMediaKindOf(t *testing.T) {
	for mime, want := range map[string]message.MediaKind{
		"image/png": message.MediaImage, "Audio/OGG": message.MediaAudio, "video/mp4": message.MediaVideo,
		"application/pdf": message.MediaFile, "": message.MediaFile, "imagex": message.MediaFile,
	} {
		if got := MediaKindOf(mime); got != want {
			t.Errorf("MediaKindOf(%q) = %q, want %q", mime, got, want)
		}
	}
}
