// SPDX-License-Identifier: Apache-2.0

package media

import (
	"bytes"
	"encoding/binary"
	"net/http"
	"strings"

	"github.com/heraldgw/herald/pkg/message"
)

// Sniff names the type of a file from its first bytes (up to 64 KiB are
// looked at; 512 are enough for most types). It never decodes anything.
// Images are MediaImage, ogg/opus, mp3, m4a, wav and webm audio MediaVoice
// or MediaAudio, video MediaVideo, and everything else MediaFile.
func Sniff(header []byte) (mime string, kind message.MediaKind) {
	h := header
	switch {
	case bytes.HasPrefix(h, []byte("\x89PNG\r\n\x1a\n")):
		return "image/png", message.MediaImage
	case bytes.HasPrefix(h, []byte("GIF87a")), bytes.HasPrefix(h, []byte("GIF89a")):
		return "image/gif", message.MediaImage
	case bytes.HasPrefix(h, []byte{0xff, 0xd8, 0xff}):
		return "image/jpeg", message.MediaImage
	case len(h) >= 12 && string(h[:4]) == "RIFF" && string(h[8:12]) == "WEBP":
		return "image/webp", message.MediaImage
	case len(h) >= 12 && string(h[:4]) == "RIFF" && string(h[8:12]) == "WAVE":
		return "audio/wav", message.MediaAudio
	case bytes.HasPrefix(h, []byte("OggS")):
		if bytes.Contains(h[:min(len(h), 128)], []byte("OpusHead")) {
			return "audio/ogg", message.MediaVoice
		}
		if bytes.Contains(h[:min(len(h), 128)], []byte("\x01vorbis")) {
			return "audio/ogg", message.MediaAudio
		}
		return "application/ogg", message.MediaFile
	case bytes.HasPrefix(h, []byte("ID3")), len(h) >= 2 && h[0] == 0xff && h[1]&0xe0 == 0xe0 && h[1]&0x06 != 0:
		return "audio/mpeg", message.MediaAudio
	case len(h) >= 12 && string(h[4:8]) == "ftyp":
		brand := string(h[8:12])
		switch brand {
		case "M4A ", "M4B ", "M4P ", "F4A ":
			return "audio/mp4", message.MediaAudio
		case "qt  ":
			return "video/quicktime", message.MediaVideo
		}
		return "video/mp4", message.MediaVideo
	case bytes.HasPrefix(h, []byte{0x1a, 0x45, 0xdf, 0xa3}):
		// Matroska or WebM; a WebM with no video track is a voice note.
		head := h[:min(len(h), 4096)]
		if bytes.Contains(head, []byte("webm")) {
			if bytes.Contains(head, []byte("V_VP")) || bytes.Contains(head, []byte("V_AV1")) {
				return "video/webm", message.MediaVideo
			}
			if bytes.Contains(head, []byte("A_OPUS")) || bytes.Contains(head, []byte("A_VORBIS")) {
				return "audio/webm", message.MediaVoice
			}
			return "video/webm", message.MediaVideo
		}
		return "video/x-matroska", message.MediaVideo
	case bytes.HasPrefix(h, []byte("%PDF-")):
		return "application/pdf", message.MediaFile
	}
	m := http.DetectContentType(h)
	if i := strings.IndexByte(m, ';'); i >= 0 && !strings.HasPrefix(m, "text/") {
		m = m[:i]
	}
	switch {
	case strings.HasPrefix(m, "image/"):
		// http.DetectContentType knows bmp and ico: images still.
		return m, message.MediaImage
	case strings.HasPrefix(m, "video/"):
		return m, message.MediaVideo
	case strings.HasPrefix(m, "audio/"):
		return m, message.MediaAudio
	}
	return m, message.MediaFile
}

// maxJPEGScan bounds the search for a JPEG's frame header.
const maxJPEGScan = 64 << 10

// ImageSize reads an image's width and height from its header bytes: PNG
// IHDR, GIF logical screen, JPEG SOFn (found within the first 64 KiB) and
// WebP (VP8, VP8L, VP8X). ok is false for anything else or a truncated
// header. Nothing is decoded: the declared size is reported as declared.
func ImageSize(h []byte) (width, height int, ok bool) {
	switch {
	case bytes.HasPrefix(h, []byte("\x89PNG\r\n\x1a\n")):
		if len(h) < 24 || string(h[12:16]) != "IHDR" {
			return 0, 0, false
		}
		return int(binary.BigEndian.Uint32(h[16:20])), int(binary.BigEndian.Uint32(h[20:24])), true
	case bytes.HasPrefix(h, []byte("GIF87a")), bytes.HasPrefix(h, []byte("GIF89a")):
		if len(h) < 10 {
			return 0, 0, false
		}
		return int(binary.LittleEndian.Uint16(h[6:8])), int(binary.LittleEndian.Uint16(h[8:10])), true
	case bytes.HasPrefix(h, []byte{0xff, 0xd8}):
		return jpegSize(h)
	case len(h) >= 12 && string(h[:4]) == "RIFF" && string(h[8:12]) == "WEBP":
		return webpSize(h)
	}
	return 0, 0, false
}

func jpegSize(h []byte) (int, int, bool) {
	h = h[:min(len(h), maxJPEGScan)]
	i := 2
	for i+4 <= len(h) {
		if h[i] != 0xff {
			return 0, 0, false
		}
		m := h[i+1]
		if m == 0xff { // fill byte
			i++
			continue
		}
		if m == 0xd8 || m == 0x01 || (m >= 0xd0 && m <= 0xd7) {
			i += 2
			continue
		}
		if m == 0xd9 || m == 0xda { // end of image, start of scan: no frame header before
			return 0, 0, false
		}
		l := int(binary.BigEndian.Uint16(h[i+2 : i+4]))
		if l < 2 {
			return 0, 0, false
		}
		if m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc {
			if i+9 > len(h) {
				return 0, 0, false
			}
			return int(binary.BigEndian.Uint16(h[i+7 : i+9])), int(binary.BigEndian.Uint16(h[i+5 : i+7])), true
		}
		i += 2 + l
	}
	return 0, 0, false
}

func webpSize(h []byte) (int, int, bool) {
	if len(h) < 30 {
		return 0, 0, false
	}
	switch string(h[12:16]) {
	case "VP8 ":
		// frame tag (3), start code 9d 01 2a, then 14-bit width and height.
		if h[23] != 0x9d || h[24] != 0x01 || h[25] != 0x2a {
			return 0, 0, false
		}
		return int(binary.LittleEndian.Uint16(h[26:28]) & 0x3fff), int(binary.LittleEndian.Uint16(h[28:30]) & 0x3fff), true
	case "VP8L":
		if h[20] != 0x2f {
			return 0, 0, false
		}
		b := binary.LittleEndian.Uint32(h[21:25])
		return int(b&0x3fff) + 1, int((b>>14)&0x3fff) + 1, true
	case "VP8X":
		w := int(h[24]) | int(h[25])<<8 | int(h[26])<<16
		hh := int(h[27]) | int(h[28])<<8 | int(h[29])<<16
		return w + 1, hh + 1, true
	}
	return 0, 0, false
}
