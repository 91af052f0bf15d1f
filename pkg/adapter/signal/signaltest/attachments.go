// SPDX-License-Identifier: Apache-2.0

package signaltest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// MaxAttachment is the largest attachment the fake accepts in a send:
// Signal's 100 MiB.
const MaxAttachment = 100 << 20

// MaxRequest bounds a JSON-RPC request body: the base64 of the largest
// attachment and 1 MiB more. A larger one is answered 413.
const MaxRequest = MaxAttachment/3*4 + 1<<20

// Attachment is a file of a received message: written in
// dataMessage.attachments and kept in the daemon's attachment store under
// ID, as signal-cli keeps what it receives.
type Attachment struct {
	ContentType, Filename, ID string
	Width, Height             int
	Caption                   string
	Data                      []byte
	// Size, when set, is written instead of len(Data).
	Size int64
	// Drip sends the data of getAttachment's answer one byte per Drip.
	Drip time.Duration
}

func (a Attachment) json() map[string]any {
	size := a.Size
	if size == 0 {
		size = int64(len(a.Data))
	}
	return map[string]any{"contentType": a.ContentType, "filename": nullable(a.Filename), "id": a.ID,
		"size": size, "width": nullableInt(a.Width), "height": nullableInt(a.Height),
		"caption": nullable(a.Caption), "uploadTimestamp": 1631458508000}
}

func nullableInt(n int) any {
	if n == 0 {
		return nil
	}
	return n
}

var errAttachmentTooLarge = errors.New("attachment too large")

// SentAttachment is an attachment of an accepted send, decoded from its
// data URI.
type SentAttachment struct {
	MIME, Name string
	Size       int64
	SHA256     string // hex
}

// store keeps the attachments of the envelopes pushed, by id.
func (s *Server) store(atts []Attachment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.files == nil {
		s.files = map[string]Attachment{}
	}
	for _, a := range atts {
		s.files[a.ID] = a
	}
}

// DeleteAttachment removes a file from the attachment store, as when
// signal-cli's data directory is cleaned: getAttachment answers -1.
func (s *Server) DeleteAttachment(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.files, id)
}

// Fetches counts getAttachment calls.
func (s *Server) Fetches() int { return fakeserver.Get(&s.mu, &s.fetches) }

type getAttachmentParams struct {
	ID        string `json:"id"`
	Recipient string `json:"recipient"`
	GroupID   string `json:"groupId"`
	Account   string `json:"account"`
}

// getAttachment answers {"data":"<base64>"}, or -1 for an unknown id.
func (s *Server) getAttachment(w http.ResponseWriter, r *http.Request, req rpcRequest) {
	var p getAttachmentParams
	if err := json.Unmarshal(req.Params, &p); err != nil || p.ID == "" || (p.Recipient == "") == (p.GroupID == "") {
		rpcErr(w, req.ID, -32602, "id and one of recipient or groupId are required")
		return
	}
	s.mu.Lock()
	s.fetches++
	a, ok := s.files[p.ID]
	s.mu.Unlock()
	if !ok {
		rpcErr(w, req.ID, -1, "Could not find attachment with ID: "+p.ID)
		return
	}
	id := string(req.ID)
	if id == "" {
		id = "null"
	}
	head := `{"jsonrpc":"2.0","result":{"data":"`
	data := base64.StdEncoding.EncodeToString(a.Data)
	tail := `"},"id":` + id + "}\n"
	w.Header().Set("Content-Type", "application/json")
	if a.Drip <= 0 {
		_, _ = fmt.Fprint(w, head+data+tail)
		return
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(head)+len(data)+len(tail)))
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, head)
	_ = http.NewResponseController(w).Flush()
	// Down closes the connection, which ends the drip.
	fakeserver.Drip(w, r, []byte(data+tail), a.Drip, nil)
}

// decodeAttachments decodes the data URIs of a send
// ("data:<mime>;filename=<name>;base64,<data>").
func decodeAttachments(uris []string) ([]SentAttachment, error) {
	var out []SentAttachment
	for _, u := range uris {
		rest, ok := strings.CutPrefix(u, "data:")
		meta, data, ok2 := strings.Cut(rest, ",")
		if !ok || !ok2 || !strings.HasSuffix(meta, ";base64") {
			return nil, errors.New("attachment is not a base64 data URI")
		}
		parts := strings.Split(strings.TrimSuffix(meta, ";base64"), ";")
		a := SentAttachment{MIME: parts[0]}
		for _, p := range parts[1:] {
			if name, ok := strings.CutPrefix(p, "filename="); ok {
				a.Name = name
			}
		}
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return nil, fmt.Errorf("attachment data: %w", err)
		}
		a.Size = int64(len(b))
		if a.Size > MaxAttachment {
			return nil, errAttachmentTooLarge
		}
		sum := sha256.Sum256(b)
		a.SHA256 = hex.EncodeToString(sum[:])
		out = append(out, a)
	}
	return out, nil
}
