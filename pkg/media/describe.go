// SPDX-License-Identifier: Apache-2.0

package media

import (
	"fmt"
	"strings"

	"github.com/heraldgw/herald/pkg/message"
)

// Described is what Describe says about a file.
type Described struct {
	Kind     message.MediaKind
	Name     string
	MIME     string
	Size     int64
	Width    int
	Height   int
	Duration int // seconds, 0 if unknown
}

// DescribedItem builds a Described from a stored item, a file name and a
// duration in seconds (0 if unknown).
func DescribedItem(it Item, name string, duration int) Described {
	return Described{Kind: it.Kind, Name: name, MIME: it.MIME, Size: it.Size, Width: it.Width, Height: it.Height, Duration: duration}
}

// Describe says in one line what a file is: "image 1280×720 png, 84 KiB",
// "file report.pdf (application/pdf, 1.2 MiB)", "voice 0:12 ogg, 9 KiB".
func Describe(d Described) string {
	sub := shortType(d.MIME)
	switch d.Kind {
	case message.MediaImage:
		var b strings.Builder
		b.WriteString("image")
		if d.Width > 0 && d.Height > 0 {
			fmt.Fprintf(&b, " %d×%d", d.Width, d.Height)
		}
		if sub != "" {
			b.WriteString(" " + sub)
		}
		return b.String() + ", " + HumanSize(d.Size)
	case message.MediaVoice, message.MediaAudio:
		var b strings.Builder
		b.WriteString(string(d.Kind))
		if d.Duration > 0 {
			fmt.Fprintf(&b, " %d:%02d", d.Duration/60, d.Duration%60)
		}
		if sub != "" {
			b.WriteString(" " + sub)
		}
		return b.String() + ", " + HumanSize(d.Size)
	}
	kind := "file"
	if d.Kind == message.MediaVideo {
		kind = "video"
	}
	name := ""
	if d.Name != "" {
		name = " " + SafeName(d.Name, d.MIME)
	}
	m := d.MIME
	if i := strings.IndexByte(m, ';'); i >= 0 {
		m = m[:i]
	}
	if m == "" {
		m = "application/octet-stream"
	}
	return fmt.Sprintf("%s%s (%s, %s)", kind, name, m, HumanSize(d.Size))
}

func shortType(m string) string {
	if i := strings.IndexByte(m, ';'); i >= 0 {
		m = m[:i]
	}
	_, sub, ok := strings.Cut(m, "/")
	if !ok {
		return ""
	}
	switch sub {
	case "jpeg":
		return "jpeg"
	case "mpeg":
		return "mp3"
	case "x-matroska":
		return "mkv"
	}
	return strings.TrimPrefix(sub, "x-")
}

// HumanSize formats a byte count: "512 B", "84 KiB", "1.2 MiB".
func HumanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	v := float64(n) / unit
	i := 0
	for v >= unit && i < len(units)-1 {
		v /= unit
		i++
	}
	if v < 10 && i > 0 {
		return fmt.Sprintf("%.1f %s", v, units[i])
	}
	return fmt.Sprintf("%.0f %s", v, units[i])
}
