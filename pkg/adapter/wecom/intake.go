// SPDX-License-Identifier: Apache-2.0

package wecom

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// Rejection reasons passed to adapter.Metrics.Rejected.
const (
	RejectBadSignature = "bad_signature"         // 401: msg_signature does not match
	RejectBadCipher    = "bad_ciphertext"        // 400: does not decrypt, or not for this corp id
	RejectMalformed    = "malformed"             // 400
	RejectTooLarge     = adapter.RejectTooLarge  // 413
	RejectReadError    = adapter.RejectReadError // 408 or 400
	RejectUnsupported  = "unsupported_type"      // 200: an event, not a message
	RejectOtherAgent   = "other_agent"           // 200: addressed to another application
)

// envelope is the body of a callback POST.
type envelope struct {
	ToUserName string `xml:"ToUserName"`
	Encrypt    string `xml:"Encrypt"`
	AgentID    string `xml:"AgentID"`
}

// inMessage is a decrypted callback message, the part herald reads.
type inMessage struct {
	ToUserName   string `xml:"ToUserName"`
	FromUserName string `xml:"FromUserName"`
	CreateTime   int64  `xml:"CreateTime"`
	MsgType      string `xml:"MsgType"`
	Content      string `xml:"Content"`
	MsgID        string `xml:"MsgId"`
	AgentID      string `xml:"AgentID"`
	Event        string `xml:"Event"`
	// Media messages: image (PicUrl, MediaId), voice (MediaId, Format,
	// Recognition), video (MediaId, ThumbMediaId), file (MediaId).
	PicURL      string `xml:"PicUrl"`
	MediaID     string `xml:"MediaId"`
	Format      string `xml:"Format"`
	Recognition string `xml:"Recognition"`
}

const maxIDLen = 256

// ServeHTTP serves the callback URL: GET is WeCom's URL verification, POST
// an encrypted message, answered 200 only once it is stored.
func (a *Adapter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	inbox := a.intake.Inbox(w)
	if inbox == nil {
		return
	}
	switch r.Method {
	case http.MethodGet:
		a.verifyURL(w, r)
	case http.MethodPost:
		a.callback(w, r, inbox)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "use GET or POST", http.StatusMethodNotAllowed)
	}
}

// query returns the signature parameters. A "+" of base64 that arrived
// unescaped reads as a space: it is restored.
func query(r *http.Request) (sig, ts, nonce, echo string) {
	q := r.URL.Query()
	return q.Get("msg_signature"), q.Get("timestamp"), q.Get("nonce"), strings.ReplaceAll(q.Get("echostr"), " ", "+")
}

// verifyURL answers the decrypted echostr when msg_signature matches.
func (a *Adapter) verifyURL(w http.ResponseWriter, r *http.Request) {
	sig, ts, nonce, echo := query(r)
	if err := a.crypt.verify(sig, ts, nonce, echo); err != nil || echo == "" {
		a.reject(w, r, http.StatusUnauthorized, RejectBadSignature, "URL verification refused: bad msg_signature", logrus.WarnLevel)
		return
	}
	plain, err := a.crypt.decrypt(echo)
	if err != nil {
		a.reject(w, r, http.StatusBadRequest, RejectBadCipher, "URL verification refused: echostr: "+err.Error(), logrus.WarnLevel)
		return
	}
	a.log.Info("wecom: callback URL verified by WeCom")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(plain)
}

func (a *Adapter) callback(w http.ResponseWriter, r *http.Request, inbox adapter.Inbox) {
	start := a.now()
	body, err := adapter.ReadBody(w, r, a.conf.MaxBodyBytes, start, a.conf.RequestTimeout)
	var be *adapter.BodyError
	if errors.As(err, &be) {
		a.reject(w, r, be.Status, be.Reason, be.Error(), logrus.DebugLevel)
		return
	}
	var env envelope
	if err := xml.Unmarshal(body, &env); err != nil || env.Encrypt == "" {
		a.reject(w, r, http.StatusBadRequest, RejectMalformed, "body is not a WeCom callback envelope", logrus.DebugLevel)
		return
	}
	sig, ts, nonce, _ := query(r)
	if err := a.crypt.verify(sig, ts, nonce, env.Encrypt); err != nil {
		a.reject(w, r, http.StatusUnauthorized, RejectBadSignature, "invalid signature: "+err.Error(), logrus.WarnLevel)
		return
	}
	plain, err := a.crypt.decrypt(env.Encrypt)
	if err != nil {
		a.reject(w, r, http.StatusBadRequest, RejectBadCipher, "cannot decrypt: "+err.Error(), logrus.WarnLevel)
		return
	}
	var m inMessage
	if err := xml.Unmarshal(plain, &m); err != nil {
		a.reject(w, r, http.StatusBadRequest, RejectMalformed, "decrypted message is not XML", logrus.WarnLevel)
		return
	}
	in := a.inbound(&m, start)
	if in != nil {
		ctx, cancel := context.WithDeadline(r.Context(), start.Add(a.conf.RequestTimeout))
		defer cancel()
		if !a.refuse.Store(ctx, w, inbox, in, RejectMalformed) {
			return
		}
	}
	// An empty 200 tells WeCom the callback is done and no passive
	// reply follows.
	w.WriteHeader(http.StatusOK)
}

// inbound turns a decrypted message into an Inbound message, or counts
// and skips what herald cannot carry (nil).
func (a *Adapter) inbound(m *inMessage, received time.Time) *message.Inbound {
	if m.AgentID != "" && m.AgentID != strconv.FormatInt(a.conf.AgentID, 10) {
		a.metrics.Rejected(RejectOtherAgent)
		a.log.WithField("agent_id", m.AgentID).Debug("wecom: message for another application skipped")
		return nil
	}
	if m.MsgType == "event" {
		a.metrics.Rejected(RejectUnsupported)
		a.log.WithFields(logrus.Fields{"type": m.MsgType, "event": m.Event}).
			Info("wecom: event acknowledged and skipped (events are not messages)")
		return nil
	}
	in := &message.Inbound{
		Platform:   a.name,
		EventID:    m.MsgID,
		ChatID:     m.FromUserName,
		ChatType:   message.ChatDirect,
		SenderID:   m.FromUserName,
		MessageID:  m.MsgID,
		ReceivedAt: received,
	}
	content(m, in)
	if m.MsgID == "" || m.FromUserName == "" || len(m.MsgID) > maxIDLen || len(m.FromUserName) > maxIDLen ||
		strings.TrimSpace(in.Text) == "" && len(in.Attachments) == 0 && len(in.Unsupported) == 0 {
		a.metrics.Rejected(RejectMalformed)
		a.log.WithField("type", m.MsgType).Warn("wecom: message without MsgId, sender or content skipped")
		return nil
	}
	return in
}

// reject answers status with msg, counts reason and logs at level.
func (a *Adapter) reject(w http.ResponseWriter, r *http.Request, status int, reason, msg string, level logrus.Level) {
	a.refuse.Refuse(w, r, a.now(), status, reason, msg, level)
}
