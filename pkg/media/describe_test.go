// SPDX-License-Identifier: Apache-2.0

package media_test

import (
	"testing"

	"github.com/heraldgw/herald/pkg/media"
	"github.com/heraldgw/herald/pkg/message"
)

func TestDescribe(t *testing.T) {
	for _, c := range []struct {
		d    media.Described
		want string
	}{
		{media.Described{Kind: message.MediaImage, MIME: "image/png", Size: 84 << 10, Width: 1280, Height: 720}, "image 1280×720 png, 84 KiB"},
		{media.Described{Kind: message.MediaFile, Name: "report.pdf", MIME: "application/pdf", Size: 1258291}, "file report.pdf (application/pdf, 1.2 MiB)"},
		{media.Described{Kind: message.MediaVoice, MIME: "audio/ogg", Size: 9 << 10, Duration: 12}, "voice 0:12 ogg, 9 KiB"},
		{media.Described{Kind: message.MediaAudio, MIME: "audio/mpeg", Size: 500, Duration: 75}, "audio 1:15 mp3, 500 B"},
		{media.Described{Kind: message.MediaVideo, Name: "../x\n.mp4", MIME: "video/mp4", Size: 3 << 30}, "video x_.mp4 (video/mp4, 3.0 GiB)"},
		{media.Described{Kind: message.MediaFile, Size: 0}, "file (application/octet-stream, 0 B)"},
		{media.Described{Kind: message.MediaImage, MIME: "image/jpeg", Size: 20 << 20}, "image jpeg, 20 MiB"},
	} {
		if got := media.Describe(c.d); got != c.want {
			t.Errorf("Describe(%+v) = %q, want %q", c.d, got, c.want)
		}
	}
	it := media.Item{SHA256: "x", Size: 2048, MIME: "image/gif", Kind: message.MediaImage, Width: 3, Height: 4}
	if got := media.Describe(media.DescribedItem(it, "a.gif", 0)); got != "image 3×4 gif, 2 KiB" {
		t.Errorf("item: %q", got)
	}
}
