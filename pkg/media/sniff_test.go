// SPDX-License-Identifier: Apache-2.0

package media_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/heraldgw/herald/pkg/media"
	"github.com/heraldgw/herald/pkg/message"
)

func pngHeader(w, h uint32) []byte {
	b := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR")
	b = binary.BigEndian.AppendUint32(b, w)
	b = binary.BigEndian.AppendUint32(b, h)
	return append(b, 8, 6, 0, 0, 0, 0, 0, 0, 0)
}

func jpegHeader(w, h uint16) []byte {
	b := []byte{0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10}
	b = append(b, []byte("JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")...)
	b = append(b, 0xff, 0xc0, 0x00, 0x11, 0x08)
	b = binary.BigEndian.AppendUint16(b, h)
	b = binary.BigEndian.AppendUint16(b, w)
	return append(b, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1)
}

func TestSniff(t *testing.T) {
	gif := append([]byte("GIF89a"), 0x40, 0x01, 0xf0, 0x00, 0, 0, 0)
	webpVP8 := append([]byte("RIFF\x00\x00\x00\x00WEBPVP8 \x00\x00\x00\x00"), 0, 0, 0, 0x9d, 0x01, 0x2a, 0x20, 0x03, 0x58, 0x02)
	webpVP8L := append([]byte("RIFF\x00\x00\x00\x00WEBPVP8L\x00\x00\x00\x00\x2f"), 0, 0, 0, 0, 0, 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(webpVP8L[21:], uint32(99)|uint32(49)<<14)
	webpVP8X := append([]byte("RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x00\x00\x00\x00"), 0xff, 0x0f, 0, 0x37, 0x08, 0)
	cases := []struct {
		name string
		in   []byte
		mime string
		kind message.MediaKind
		w, h int
	}{
		{"png", pngHeader(1280, 720), "image/png", message.MediaImage, 1280, 720},
		{"gif", gif, "image/gif", message.MediaImage, 320, 240},
		{"jpeg", jpegHeader(640, 480), "image/jpeg", message.MediaImage, 640, 480},
		{"webp vp8", webpVP8, "image/webp", message.MediaImage, 800, 600},
		{"webp vp8l", webpVP8L, "image/webp", message.MediaImage, 100, 50},
		{"webp vp8x", webpVP8X, "image/webp", message.MediaImage, 4096, 2104},
		{"ogg opus", []byte("OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x13OpusHead"), "audio/ogg", message.MediaVoice, 0, 0},
		{"mp3 id3", []byte("ID3\x04\x00\x00\x00\x00\x00\x00"), "audio/mpeg", message.MediaAudio, 0, 0},
		{"mp3 frame", []byte{0xff, 0xfb, 0x90, 0x64, 0, 0}, "audio/mpeg", message.MediaAudio, 0, 0},
		{"m4a", []byte("\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00"), "audio/mp4", message.MediaAudio, 0, 0},
		{"mp4", []byte("\x00\x00\x00\x20ftypisom\x00\x00\x02\x00"), "video/mp4", message.MediaVideo, 0, 0},
		{"wav", []byte("RIFF\x24\x00\x00\x00WAVEfmt "), "audio/wav", message.MediaAudio, 0, 0},
		{"webm voice", []byte("\x1a\x45\xdf\xa3\x9f\x42\x82\x84webm....A_OPUS"), "audio/webm", message.MediaVoice, 0, 0},
		{"webm video", []byte("\x1a\x45\xdf\xa3\x9f\x42\x82\x84webm....V_VP9"), "video/webm", message.MediaVideo, 0, 0},
		{"pdf", []byte("%PDF-1.7\n"), "application/pdf", message.MediaFile, 0, 0},
		{"text", []byte("hello world"), "text/plain; charset=utf-8", message.MediaFile, 0, 0},
		{"empty", nil, "text/plain; charset=utf-8", message.MediaFile, 0, 0},
		{"zip", []byte("PK\x03\x04"), "application/zip", message.MediaFile, 0, 0},
		{"truncated png", []byte("\x89PNG\r\n\x1a\n\x00"), "image/png", message.MediaImage, 0, 0},
		{"truncated jpeg", []byte{0xff, 0xd8, 0xff, 0xe0, 0x00}, "image/jpeg", message.MediaImage, 0, 0},
	}
	for _, c := range cases {
		mime, kind := media.Sniff(c.in)
		if mime != c.mime || kind != c.kind {
			t.Errorf("%s: sniff %q %q, want %q %q", c.name, mime, kind, c.mime, c.kind)
		}
		w, h, ok := media.ImageSize(c.in)
		if w != c.w || h != c.h || ok != (c.w > 0) {
			t.Errorf("%s: size %d×%d %v, want %d×%d", c.name, w, h, ok, c.w, c.h)
		}
	}
}

// TestSniffBomb: a PNG declaring 100000×100000 pixels (40 GB decoded) in a
// tiny file is stored and described from its header, never decoded.
func TestSniffBomb(t *testing.T) {
	bomb := append(pngHeader(100000, 100000), bytes.Repeat([]byte{0}, 200)...)
	s, _ := media.OpenStore(t.TempDir(), 0)
	it, err := s.Put(context.Background(), bytes.NewReader(bomb), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if it.Kind != message.MediaImage || it.Width != 100000 || it.Height != 100000 || it.Size != int64(len(bomb)) {
		t.Fatalf("item %+v", it)
	}
	allocs := testing.AllocsPerRun(10, func() { media.ImageSize(bomb); media.Sniff(bomb) })
	if allocs > 10 {
		t.Fatalf("%v allocations sniffing a header", allocs)
	}
}

// TestJPEGScanBounded: a JPEG whose frame header lies past 64 KiB has no
// size, and a malformed segment length does not loop.
func TestJPEGScanBounded(t *testing.T) {
	b := []byte{0xff, 0xd8}
	for len(b) < 70<<10 {
		b = append(b, 0xff, 0xe1, 0xff, 0xfe)
		b = append(b, make([]byte, 0xfffc)...)
	}
	b = append(b, jpegHeader(10, 10)[2:]...)
	if _, _, ok := media.ImageSize(b); ok {
		t.Fatal("found a frame past the scan bound")
	}
	if _, _, ok := media.ImageSize([]byte{0xff, 0xd8, 0xff, 0xe0, 0x00, 0x00, 0xff}); ok {
		t.Fatal("zero length segment accepted")
	}
}

func FuzzImageSize(f *testing.F) {
	f.Add(pngHeader(1, 1))
	f.Add(jpegHeader(1, 1))
	f.Add([]byte("RIFF\x00\x00\x00\x00WEBPVP8X"))
	f.Fuzz(func(t *testing.T, b []byte) {
		media.ImageSize(b)
		media.Sniff(b)
	})
}
