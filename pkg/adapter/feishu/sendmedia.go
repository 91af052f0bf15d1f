// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// Upload limits of the open platform: POST /open-apis/im/v1/images takes
// at most 10 MB, POST /open-apis/im/v1/files at most 30 MB; neither takes
// an empty file.
const (
	maxImageUpload = 10 << 20
	maxFileUpload  = 30 << 20
	// uploadRate is the slowest upload rate a send is given time for, on
	// top of request_timeout: 30 MB get two minutes more.
	uploadRate = 256 << 10
)

// SendsMedia implements adapter.MediaSender: every kind is uploaded
// natively.
func (a *Adapter) SendsMedia(kind message.MediaKind) bool { return kind.Valid() }

// upload is one planned media upload: the endpoint, its form fields and
// the message that carries the returned key.
type upload struct {
	op, path, fileField string
	fields              [][2]string
	keyField            string // image_key or file_key in the answer
	msgType             string // image, file or audio
	limit               int64
}

// planUpload chooses the endpoint and message type for m: images as image
// messages, Opus audio as audio messages (the platform plays only Opus),
// everything else, video included, as a file message.
func planUpload(m *message.OutboundMedia) upload {
	if m.Kind == message.MediaImage {
		return upload{op: "upload image", path: "/open-apis/im/v1/images", fileField: "image",
			fields: [][2]string{{"image_type", "message"}}, keyField: "image_key", msgType: "image", limit: maxImageUpload}
	}
	u := upload{op: "upload file", path: "/open-apis/im/v1/files", fileField: "file",
		keyField: "file_key", msgType: "file", limit: maxFileUpload}
	name := uploadName(m)
	fileType := "stream"
	switch ext := strings.ToLower(filepath.Ext(name)); {
	case (m.Kind == message.MediaVoice || m.Kind == message.MediaAudio) && (m.MIME == "audio/ogg" || m.MIME == "audio/opus" || ext == ".opus"):
		fileType, u.msgType = "opus", "audio"
	case m.MIME == "video/mp4" || ext == ".mp4":
		fileType = "mp4"
	case m.MIME == "application/pdf" || ext == ".pdf":
		fileType = "pdf"
	case ext == ".doc" || ext == ".docx":
		fileType = "doc"
	case ext == ".xls" || ext == ".xlsx":
		fileType = "xls"
	case ext == ".ppt" || ext == ".pptx":
		fileType = "ppt"
	}
	u.fields = [][2]string{{"file_type", fileType}, {"file_name", name}}
	return u
}

// uploadName is the name a file is uploaded under: the part's, or one
// made from the kind.
func uploadName(m *message.OutboundMedia) string {
	if n := filepath.Base(m.Name); m.Name != "" && n != "." && n != "/" {
		return n
	}
	return string(m.Kind)
}

// uploadMedia uploads m and returns the key and the message type that
// carries it. The upload is not idempotent: a retry uploads again, and the
// key of the earlier upload is never used (an orphan resource, not a
// duplicate message: only the message send carries the uuid).
func (a *Adapter) uploadMedia(ctx context.Context, m *message.OutboundMedia) (key, msgType string, err error) {
	u := planUpload(m)
	f, err := os.Open(m.Path)
	if err != nil {
		return "", "", fmt.Errorf("feishu: %s: %w: %w", u.op, adapter.ErrPermanent, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", "", fmt.Errorf("feishu: %s: %w: %w", u.op, adapter.ErrPermanent, err)
	}
	size := st.Size()
	switch {
	case size == 0:
		return "", "", fmt.Errorf("feishu: %s: empty file: %w", u.op, adapter.ErrPermanent)
	case size > u.limit:
		return "", "", fmt.Errorf("feishu: %s: %d bytes, the platform takes at most %d: %w", u.op, size, u.limit, adapter.ErrTooLarge)
	}
	var head bytes.Buffer
	w := multipart.NewWriter(&head)
	for _, kv := range u.fields {
		if err := w.WriteField(kv[0], kv[1]); err != nil {
			return "", "", fmt.Errorf("feishu: %s: %w: %w", u.op, adapter.ErrPermanent, err)
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, u.fileField, uploadName(m)))
	h.Set("Content-Type", "application/octet-stream")
	if _, err := w.CreatePart(h); err != nil {
		return "", "", fmt.Errorf("feishu: %s: %w: %w", u.op, adapter.ErrPermanent, err)
	}
	headLen := head.Len()
	if err := w.Close(); err != nil {
		return "", "", fmt.Errorf("feishu: %s: %w: %w", u.op, adapter.ErrPermanent, err)
	}
	all := head.Bytes()
	prefix, trailer := all[:headLen], all[headLen:]
	timeout := a.rest.timeout + time.Duration(size/uploadRate+1)*time.Second
	var out map[string]string
	for attempt := 0; ; attempt++ {
		tok, err := a.rest.tenantToken(ctx)
		if err != nil {
			return "", "", err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return "", "", fmt.Errorf("feishu: %s: %w: %w", u.op, adapter.ErrPermanent, err)
		}
		body := io.MultiReader(bytes.NewReader(prefix), io.LimitReader(f, size), bytes.NewReader(trailer))
		err = a.rest.doRaw(ctx, timeout, u.op, http.MethodPost, u.path, tok, w.FormDataContentType(), body, &out, false)
		var te *tokenError
		if errors.As(err, &te) && attempt == 0 {
			a.rest.invalidate(tok)
			continue
		}
		if errors.Is(err, adapter.ErrAmbiguous) {
			// No message exists yet: uploading again is safe.
			return "", "", fmt.Errorf("feishu: %s: %w (%v)", u.op, adapter.ErrTemporary, err)
		}
		if err != nil {
			return "", "", err
		}
		break
	}
	if out[u.keyField] == "" {
		return "", "", fmt.Errorf("feishu: %s: no %s in the answer: %w", u.op, u.keyField, adapter.ErrTemporary)
	}
	return out[u.keyField], u.msgType, nil
}

// mediaMessage returns the msg_type and content of a message showing key.
// An image with a caption becomes a post: the image, then the caption, in
// one message.
func mediaMessage(msgType, key, caption string) (string, string) {
	var v any
	switch msgType {
	case "image":
		if caption == "" {
			v = map[string]string{"image_key": key}
			break
		}
		msgType = "post"
		v = map[string]any{"zh_cn": map[string]any{"content": [][]map[string]string{
			{{"tag": "img", "image_key": key}},
			{{"tag": "text", "text": noMentions(caption)}},
		}}}
	default:
		v = map[string]string{"file_key": key}
	}
	b, _ := json.Marshal(v)
	return msgType, string(b)
}

// captionUUID is the idempotency key of the caption sent after a file.
func captionUUID(key string) string {
	if key == "" {
		return ""
	}
	return requestUUID(key + "/caption")
}
