// SPDX-License-Identifier: Apache-2.0

package wecomtest

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// UploadLimits are media/upload's size limits by type: image 10 MB (JPG,
// PNG), voice 2 MB (AMR), video 10 MB (MP4), file 20 MB; every file must
// be larger than 5 bytes.
var UploadLimits = map[string]int64{"image": 10 << 20, "voice": 2 << 20, "video": 10 << 20, "file": 20 << 20}

// MinUpload is the least size media/upload accepts, exclusive.
const MinUpload = 5

// Errcodes of the media APIs.
const (
	// ErrCodeFileSize is "invalid file size": an empty or tiny file, or a
	// voice or file over its limit.
	ErrCodeFileSize = 40006
	// ErrCodeMediaID is "invalid media_id": unknown, or older than 3 days.
	ErrCodeMediaID = 40007
	// ErrCodeImageSize is an image over its limit.
	ErrCodeImageSize = 40009
	// ErrCodeVideoSize is a video over its limit.
	ErrCodeVideoSize = 40011
)

var tooLarge = map[string]int{"image": ErrCodeImageSize, "video": ErrCodeVideoSize, "voice": ErrCodeFileSize, "file": ErrCodeFileSize}

// Media is a temporary media file, served by media/get.
type Media struct {
	Data        []byte
	ContentType string
	Name        string
	// Expired makes media/get answer 40007, as WeCom does after 3 days.
	Expired bool
}

// Upload is a file media/upload accepted.
type Upload struct {
	MediaID string
	Type    string // image, voice, video or file
	// FilePart is the "media" part: its filename, type, size and hash.
	fakeserver.FilePart
}

// AddMedia registers a file a member sent (its MediaId in a callback) and
// returns its media id.
func (f *Fake) AddMedia(data []byte, contentType, name string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	id := fmt.Sprintf("fake-media-%06d", f.seq)
	f.media[id] = &Media{Data: data, ContentType: contentType, Name: name}
	return id
}

// ExpireMedia makes media/get answer 40007 for id.
func (f *Fake) ExpireMedia(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m := f.media[id]; m != nil {
		m.Expired = true
	}
}

// SlowMedia makes media/get write one byte per every (0: at once).
func (f *Fake) SlowMedia(every time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.slow = every
}

// Uploads returns the files media/upload accepted so far.
func (f *Fake) Uploads() []Upload {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Upload(nil), f.uploads...)
}

// mediaGet is GET /cgi-bin/media/get?access_token=&media_id=: the bytes
// with their Content-Type and a Content-Disposition naming the file, or
// a JSON errcode.
func (f *Fake) mediaGet(w http.ResponseWriter, r *http.Request) {
	if f.fault(MediaGet, w, r) {
		return
	}
	if _, ok := f.token(w, r); !ok {
		return
	}
	f.mu.Lock()
	m := f.media[r.URL.Query().Get("media_id")]
	var data []byte
	var ct, name string
	expired := m == nil || m.Expired
	if !expired {
		data, ct, name = m.Data, m.ContentType, m.Name
	}
	slow := f.slow
	f.mu.Unlock()
	if expired {
		answer(w, ErrCodeMediaID, "invalid media_id", nil)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	fakeserver.ServeBytes(w, r, data, slow, f.done)
}

// upload is POST /cgi-bin/media/upload?access_token=&type=, multipart with
// the file part "media".
func (f *Fake) upload(w http.ResponseWriter, r *http.Request) {
	if f.fault(MediaUpload, w, r) {
		return
	}
	if _, ok := f.token(w, r); !ok {
		return
	}
	typ := r.URL.Query().Get("type")
	limit, ok := UploadLimits[typ]
	if !ok {
		answer(w, 40004, "invalid media type", nil)
		return
	}
	fp, err := fakeserver.ReadFilePart(r, "media")
	if errors.Is(err, fakeserver.ErrNoFilePart) {
		answer(w, 41005, "media data missing", nil)
		return
	}
	if err != nil {
		answer(w, 40035, "invalid parameter: "+err.Error(), nil)
		return
	}
	up := &Upload{Type: typ, FilePart: fp}
	switch {
	case up.Size <= MinUpload:
		answer(w, ErrCodeFileSize, "invalid file size", nil)
		return
	case up.Size > limit:
		answer(w, tooLarge[typ], "invalid "+typ+" size", nil)
		return
	}
	f.mu.Lock()
	f.seq++
	up.MediaID = fmt.Sprintf("fake-upload-%06d", f.seq)
	f.uploads = append(f.uploads, *up)
	f.media[up.MediaID] = &Media{ContentType: up.ContentType, Name: up.Name}
	f.mu.Unlock()
	answer(w, 0, "ok", map[string]any{"type": typ, "media_id": up.MediaID, "created_at": strconv.FormatInt(time.Now().Unix(), 10)})
}

// sendMedia accepts an image, voice, video or file message whose media_id
// was uploaded with that type.
func (f *Fake) sendMedia(w http.ResponseWriter, tok string, b *sendBody) {
	ref := map[string]*mediaRef{"image": b.Image, "voice": b.Voice, "video": b.Video, "file": b.File}[b.MsgType]
	if ref == nil {
		answer(w, 40008, "invalid message type", nil)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var typ string
	for _, u := range f.uploads {
		if u.MediaID == ref.MediaID {
			typ = u.Type
		}
	}
	if typ != b.MsgType {
		answer(w, ErrCodeMediaID, "invalid media_id", nil)
		return
	}
	f.seq++
	s := Sent{MsgID: fmt.Sprintf("fake-msgid-%06d", f.seq), ToUser: b.ToUser, MsgType: b.MsgType, MediaID: ref.MediaID, Title: ref.Title,
		AgentID: b.AgentID, Token: tok}
	f.sent = append(f.sent, s)
	answer(w, 0, "ok", map[string]any{"invaliduser": "", "invalidparty": "", "invalidtag": "", "unlicenseduser": "", "msgid": s.MsgID})
}
