// SPDX-License-Identifier: Apache-2.0

package media

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
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
)

// Transcriber calls an OpenAI-compatible speech-to-text endpoint.
type Transcriber struct {
	// URL is the base, e.g. "https://api.openai.com"; "/v1/audio/transcriptions"
	// is appended (a base already ending in "/v1" is accepted too).
	URL string
	// Model is sent as the "model" field, e.g. "whisper-1".
	Model string
	// Key is sent as a bearer token when not empty.
	Key string
	// Timeout bounds one call (default 2 minutes).
	Timeout time.Duration
	// HTTP is the client to use (default: a plain one, the endpoint being
	// configured by the operator).
	HTTP *http.Client
}

// maxTranscriptBytes bounds the answer read.
const maxTranscriptBytes = 1 << 20

// Transcribe sends the audio in r (named name, of type mimeType) and
// returns the transcript. Errors start with "media: transcribe:" and wrap
// adapter.ErrPermanent (4xx except 408 and 429, an unreadable answer) or
// adapter.ErrTemporary (network, 5xx, 408, 429).
func (t *Transcriber) Transcribe(ctx context.Context, r io.Reader, name, mimeType string) (string, error) {
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if err := mw.WriteField("model", t.Model); err != nil {
		return "", fmt.Errorf("media: transcribe: %w", err)
	}
	if err := mw.WriteField("response_format", "json"); err != nil {
		return "", fmt.Errorf("media: transcribe: %w", err)
	}
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename=%q`, SafeName(name, mimeType)))
	if mimeType == "" {
		mimeType = "application/octet-stream"
	}
	h.Set("Content-Type", mimeType)
	fw, err := mw.CreatePart(h)
	if err != nil {
		return "", fmt.Errorf("media: transcribe: %w", err)
	}
	if _, err := io.Copy(fw, &ctxReader{ctx: ctx, r: r}); err != nil {
		return "", fmt.Errorf("media: transcribe: read audio: %w", err)
	}
	if err := mw.Close(); err != nil {
		return "", fmt.Errorf("media: transcribe: %w", err)
	}
	base := strings.TrimSuffix(strings.TrimRight(t.URL, "/"), "/v1")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/audio/transcriptions", &body)
	if err != nil {
		return "", fmt.Errorf("media: transcribe: %w: %w", adapter.ErrPermanent, err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Accept", "application/json")
	if t.Key != "" {
		req.Header.Set("Authorization", "Bearer "+t.Key)
	}
	hc := t.HTTP
	if hc == nil {
		hc = &http.Client{}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("media: transcribe: %w: %w", adapter.ErrTemporary, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxTranscriptBytes+1))
	if err != nil {
		return "", fmt.Errorf("media: transcribe: %w: %w", adapter.ErrTemporary, err)
	}
	if resp.StatusCode != http.StatusOK {
		class := adapter.ErrPermanent
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout {
			class = adapter.ErrTemporary
		}
		return "", fmt.Errorf("media: transcribe: %w: http %d: %s", class, resp.StatusCode, snippet(data))
	}
	if len(data) > maxTranscriptBytes {
		return "", fmt.Errorf("media: transcribe: %w: answer over %d bytes", adapter.ErrPermanent, maxTranscriptBytes)
	}
	var out struct {
		Text *string `json:"text"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return "", fmt.Errorf("media: transcribe: %w: %w", adapter.ErrPermanent, err)
	}
	if out.Text == nil {
		return "", fmt.Errorf("media: transcribe: %w: %w", adapter.ErrPermanent, errors.New("answer without text"))
	}
	return strings.TrimSpace(*out.Text), nil
}

// snippet is the start of an error body, for the error message.
func snippet(b []byte) string {
	s := strings.ToValidUTF8(string(b[:min(len(b), 200)]), "?")
	return strings.Join(strings.Fields(s), " ")
}
