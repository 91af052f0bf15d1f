// SPDX-License-Identifier: Apache-2.0

package wecomtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// Defaults of a fake.
const (
	DefaultCorpID  = "ww6b1e3c5d7f9a0b2c"
	DefaultAgentID = 1000002
	DefaultSecret  = "fake-application-secret-0123456789abcdefghij"
	DefaultToken   = "fakeCallbackToken"
	// DefaultEncodingAESKey is 43 characters of base64 (a 32-byte key).
	DefaultEncodingAESKey = "ZmFrZS1lbmNvZGluZy1hZXMta2V5LWZvci1oZXJhbGQ"
	// TokenLifetime is expires_in of an issued access token, as WeCom's.
	TokenLifetime = 7200
	// MaxTextBytes is the length of text content WeCom delivers; it
	// truncates a longer one.
	MaxTextBytes = 2048
)

// Sent is a message the fake accepted.
type Sent struct {
	MsgID  string
	ToUser string
	// MsgType is text, image, voice, video or file.
	MsgType string
	Text    string
	// MediaID is the media_id of an image, voice, video or file message,
	// Title a video's title.
	MediaID, Title string
	AgentID        int64
	Token          string
}

// Fault points (fakeserver.Faults.Inject). WeCom answers its errors with
// HTTP 200 and an errcode: a RateLimit fault is errcode 45009 (or its
// Code), a Reject(http.StatusOK).WithCode("…") fault that errcode, a
// Reject of another status that HTTP status.
const (
	Token       fakeserver.Point = "gettoken"
	Send        fakeserver.Point = "message/send"
	MediaGet    fakeserver.Point = "media/get"
	MediaUpload fakeserver.Point = "media/upload"
)

// Fake is a running fake WeCom.
type Fake struct {
	URL     string // server API base
	CorpID  string
	AgentID int64
	Secret  string
	Crypt   Crypt

	fakeserver.Faults

	srv  *httptest.Server
	done chan struct{}

	mu         sync.Mutex
	tokens     map[string]bool // issued tokens: true while valid
	issued     int
	secretBad  bool
	sent       []Sent
	blackholed int
	seq        int
	media      map[string]*Media
	uploads    []Upload
	slow       time.Duration
}

// New starts a fake on 127.0.0.1 with the default credentials; it stops
// with the test.
func New(t testing.TB) *Fake {
	t.Helper()
	return NewOn(t, net.Listen)
}

// NewOn is New with the listener opened by listen: a test serving herald in
// another network namespace passes that namespace's
// (systemdbox.Sandbox.Listen).
func NewOn(t testing.TB, listen func(network, address string) (net.Listener, error)) *Fake {
	t.Helper()
	ln, err := listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("wecomtest: listen: %v", err)
	}
	f := &Fake{CorpID: DefaultCorpID, AgentID: DefaultAgentID, Secret: DefaultSecret,
		Crypt:  Crypt{Token: DefaultToken, EncodingAESKey: DefaultEncodingAESKey, ReceiveID: DefaultCorpID},
		tokens: map[string]bool{}, media: map[string]*Media{}, done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cgi-bin/gettoken", f.gettoken)
	mux.HandleFunc("POST /cgi-bin/message/send", f.send)
	mux.HandleFunc("GET /cgi-bin/media/get", f.mediaGet)
	mux.HandleFunc("POST /cgi-bin/media/upload", f.upload)
	f.srv = httptest.NewUnstartedServer(mux)
	f.srv.Listener.Close()
	f.srv.Listener = ln
	f.srv.Start()
	f.URL = f.srv.URL
	t.Cleanup(func() {
		close(f.done)
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
	return f
}

// ExpireTokens makes every access token issued so far expired: a call
// with one is answered 42001.
func (f *Fake) ExpireTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k := range f.tokens {
		f.tokens[k] = false
	}
}

// RejectSecret makes gettoken answer 40001 (invalid secret), as WeCom
// does once the application's secret was reset.
func (f *Fake) RejectSecret() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secretBad = true
}

// Sent returns the messages accepted so far.
func (f *Fake) Sent() []Sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Sent(nil), f.sent...)
}

// To returns the accepted messages to user, in order.
func (f *Fake) To(user string) []Sent {
	var out []Sent
	for _, s := range f.Sent() {
		if s.ToUser == user {
			out = append(out, s)
		}
	}
	return out
}

// Issued returns how many access tokens gettoken issued.
func (f *Fake) Issued() int { return fakeserver.Get(&f.mu, &f.issued) }

// Blackholed returns how many requests are being held unanswered or were.
func (f *Fake) Blackholed() int { return fakeserver.Get(&f.mu, &f.blackholed) }

// Text builds a signed callback carrying text message m.
func (f *Fake) Text(m Message) Callback {
	agent := m.AgentID
	if agent == 0 {
		agent = f.AgentID
	}
	return f.Crypt.Seal(agent, Plain(f.CorpID, agent, m))
}

// answer writes WeCom's JSON answer: errcode, errmsg and fields.
func answer(w http.ResponseWriter, code int, msg string, fields map[string]any) {
	out := map[string]any{"errcode": code, "errmsg": msg}
	for k, v := range fields {
		out[k] = v
	}
	b, _ := json.Marshal(out)
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_, _ = w.Write(b)
}

// fault serves a fault injected at p, if any; it reports whether it did.
func (f *Fake) fault(p fakeserver.Point, w http.ResponseWriter, r *http.Request) bool {
	fl, ok := f.Take(p)
	if !ok {
		return false
	}
	switch {
	case fl.Kind == fakeserver.KindBlackhole:
		f.mu.Lock()
		f.blackholed++
		f.mu.Unlock()
		fakeserver.Hold(r, f.done)
	case fl.Kind == fakeserver.KindDrop:
		fakeserver.DropConn(w)
	case fl.Kind == fakeserver.KindRateLimit || fl.Status == http.StatusOK:
		code, err := strconv.Atoi(fl.Code)
		if err != nil {
			code = 45009
		}
		answer(w, code, "fault: "+fl.String(), nil)
	default:
		http.Error(w, http.StatusText(fl.Status), fl.Status)
	}
	return true
}

func (f *Fake) gettoken(w http.ResponseWriter, r *http.Request) {
	if f.fault(Token, w, r) {
		return
	}
	q := r.URL.Query()
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case q.Get("corpid") != f.CorpID:
		answer(w, 40013, "invalid corpid", nil)
	case f.secretBad || q.Get("corpsecret") != f.Secret:
		answer(w, 40001, "invalid credential", nil)
	default:
		f.issued++
		tok := fmt.Sprintf("fake-access-token-%04d", f.issued)
		f.tokens[tok] = true
		answer(w, 0, "ok", map[string]any{"access_token": tok, "expires_in": TokenLifetime})
	}
}

type sendBody struct {
	ToUser  string `json:"touser"`
	ToParty string `json:"toparty"`
	ToTag   string `json:"totag"`
	MsgType string `json:"msgtype"`
	AgentID int64  `json:"agentid"`
	Text    *struct {
		Content string `json:"content"`
	} `json:"text"`
	Image *mediaRef `json:"image"`
	Voice *mediaRef `json:"voice"`
	Video *mediaRef `json:"video"`
	File  *mediaRef `json:"file"`
}

type mediaRef struct {
	MediaID     string `json:"media_id"`
	Title       string `json:"title"`
	Description string `json:"description"`
}

// token checks the request's access_token, answering its errcode if it is
// missing, unknown or expired.
func (f *Fake) token(w http.ResponseWriter, r *http.Request) (string, bool) {
	tok := r.URL.Query().Get("access_token")
	f.mu.Lock()
	valid, known := f.tokens[tok]
	f.mu.Unlock()
	switch {
	case tok == "":
		answer(w, 41001, "access_token missing", nil)
	case !known:
		answer(w, 40014, "invalid access_token", nil)
	case !valid:
		answer(w, 42001, "access_token expired", nil)
	default:
		return tok, true
	}
	return "", false
}

func (f *Fake) send(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	if f.fault(Send, w, r) {
		return
	}
	tok, ok := f.token(w, r)
	if !ok {
		return
	}
	var b sendBody
	switch {
	case json.Unmarshal(body, &b) != nil:
		answer(w, 47001, "data format error", nil)
		return
	case b.AgentID != f.AgentID:
		answer(w, 40056, "invalid agentid", nil)
		return
	case b.ToUser == "" && b.ToParty == "" && b.ToTag == "":
		answer(w, 40035, "invalid parameter: touser, toparty and totag empty", nil)
		return
	case b.MsgType != "text":
		f.sendMedia(w, tok, &b)
		return
	case b.Text == nil:
		answer(w, 40008, "invalid message type", nil)
		return
	case b.Text.Content == "":
		answer(w, 44004, "empty content", nil)
		return
	case len(b.Text.Content) > MaxTextBytes:
		// WeCom truncates a longer content rather than refusing it.
		b.Text.Content = b.Text.Content[:MaxTextBytes]
	}
	f.mu.Lock()
	f.seq++
	s := Sent{MsgID: fmt.Sprintf("fake-msgid-%06d", f.seq), ToUser: b.ToUser, MsgType: "text", Text: b.Text.Content, AgentID: b.AgentID, Token: tok}
	f.sent = append(f.sent, s)
	f.mu.Unlock()
	answer(w, 0, "ok", map[string]any{"invaliduser": "", "invalidparty": "", "invalidtag": "", "unlicenseduser": "", "msgid": s.MsgID})
}
