// SPDX-License-Identifier: Apache-2.0

package whatsapptest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// Defaults of a fake.
const (
	DefaultToken         = "EAAG-fake-access-token"
	DefaultAppSecret     = "fake-app-secret"
	DefaultVerifyToken   = "fake-verify-token"
	DefaultPhoneNumberID = "106540352242922"
	DefaultVersion       = "v21.0"
)

// Window is WhatsApp's customer-service window, as the fake enforces it.
const Window = 24 * time.Hour

// Sent is a message the fake accepted.
type Sent struct {
	ID       string
	To       string
	Type     string // text, template, image, document, audio or video
	Text     string // text.body
	ReplyTo  string // context.message_id
	Template string // template.name
	Language string // template.language.code
	Params   []string
	Auth     string
	// MediaID, Caption and Filename are the media object of an image,
	// document, audio or video message.
	MediaID  string
	Caption  string
	Filename string
}

// Failure is a scripted answer to the next send (or check).
type Failure struct {
	Status     int
	Code       int
	Message    string
	RetryAfter string
	// Blackhole holds the request unanswered until the client gives up.
	Blackhole bool
	// Pass lets the request through, answered as usual: a script can
	// fail the second of two calls (a media message after its upload).
	Pass bool
}

// Pass is a scripted entry that lets its request through.
func Pass() Failure { return Failure{Pass: true} }

// RateLimited is HTTP 429 with WhatsApp's throughput code 130429 and
// Retry-After seconds (empty: none).
func RateLimited(retryAfter string) Failure {
	return Failure{Status: http.StatusTooManyRequests, Code: 130429, Message: "(#130429) Rate limit hit", RetryAfter: retryAfter}
}

// GraphError is a Graph API error with code (e.g. 131056 pair rate limit,
// 80007 account rate limit, 4 app rate limit) answered with HTTP status.
func GraphError(status, code int, msg string) Failure {
	return Failure{Status: status, Code: code, Message: msg}
}

// Blackhole is a request the fake never answers.
func Blackhole() Failure { return Failure{Blackhole: true} }

// Fake is a running fake Cloud API.
type Fake struct {
	URL           string // Graph API base, without version
	Token         string
	AppSecret     string
	PhoneNumberID string

	srv *httptest.Server

	mu         sync.Mutex
	now        func() time.Time
	expired    bool
	script     []Failure
	sent       []Sent
	checks     int
	blackholed int
	lastIn     map[string]time.Time
	seq        int
	changes    fakeserver.Changes
	done       chan struct{}

	media          map[string]*mediaFile
	urlGen         int
	expireNext     bool
	uploads        []Upload
	lookups        int
	downloads      int
	downloadNoAuth int
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
		t.Fatalf("whatsapptest: listen: %v", err)
	}
	f := &Fake{Token: DefaultToken, AppSecret: DefaultAppSecret, PhoneNumberID: DefaultPhoneNumberID,
		now: time.Now, lastIn: map[string]time.Time{}, done: make(chan struct{})}
	mux := http.NewServeMux()
	base := "/" + DefaultVersion + "/" + f.PhoneNumberID
	mux.HandleFunc("GET "+base, f.check)
	mux.HandleFunc("POST "+base+"/messages", f.messages)
	mux.HandleFunc("POST "+base+"/media", f.upload)
	mux.HandleFunc("GET /"+DefaultVersion+"/{media}", f.mediaURL)
	mux.HandleFunc("GET /whatsapp_business/attachments/", f.download)
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

// ExpireToken makes every later call fail with code 190 (HTTP 401), as
// Graph answers an expired access token.
func (f *Fake) ExpireToken() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expired = true
}

// Script queues failures answered to the next sends (and checks), in order.
func (f *Fake) Script(fs ...Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.script = append(f.script, fs...)
}

// SetNow replaces the fake's clock, which decides the 24-hour window.
func (f *Fake) SetNow(now func() time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = now
}

// UserWrote records that user sent the business a message at t: the fake
// accepts free-form messages to user until t + 24h. Text builds the
// notification; it calls this itself.
func (f *Fake) UserWrote(user string, t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t.After(f.lastIn[user]) {
		f.lastIn[user] = t
	}
}

// Sent returns the messages accepted so far.
func (f *Fake) Sent() []Sent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Sent(nil), f.sent...)
}

// Checks returns how many token checks (GET phone number) were answered.
func (f *Fake) Checks() int { return fakeserver.Get(&f.mu, &f.checks) }

// Blackholed returns how many requests are being held unanswered or were.
func (f *Fake) Blackholed() int { return fakeserver.Get(&f.mu, &f.blackholed) }

// Wait waits until cond holds, re-checked whenever the fake records
// something, failing t after timeout.
func (f *Fake) Wait(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	f.changes.Wait(t, timeout, "whatsapptest: "+what, cond)
}

// wake signals a change; called with mu held.
func (f *Fake) wake() { f.changes.Notify() }

// answer checks the token and the script; it returns false when it has
// answered the request itself.
func (f *Fake) answer(w http.ResponseWriter, r *http.Request) bool {
	f.mu.Lock()
	auth := r.Header.Get("Authorization")
	if f.expired || auth != "Bearer "+f.Token {
		f.mu.Unlock()
		msg := "Error validating access token: Session has expired."
		if !f.expired {
			msg = "Invalid OAuth access token - Cannot parse access token"
		}
		writeError(w, Failure{Status: http.StatusUnauthorized, Code: 190, Message: msg})
		return false
	}
	if len(f.script) == 0 {
		f.mu.Unlock()
		return true
	}
	fl := f.script[0]
	f.script = f.script[1:]
	if fl.Pass {
		f.mu.Unlock()
		return true
	}
	if fl.Blackhole {
		f.blackholed++
		f.wake()
	}
	f.mu.Unlock()
	if fl.Blackhole {
		<-r.Context().Done()
		return false
	}
	writeError(w, fl)
	return false
}

func writeError(w http.ResponseWriter, fl Failure) {
	if fl.RetryAfter != "" {
		w.Header().Set("Retry-After", fl.RetryAfter)
	}
	typ := "OAuthException"
	b, _ := json.Marshal(map[string]any{"error": map[string]any{
		"message": fl.Message, "type": typ, "code": fl.Code,
		"error_data": map[string]any{"messaging_product": "whatsapp", "details": fl.Message},
		"fbtrace_id": "AfakeTrace",
	}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(fl.Status)
	_, _ = w.Write(b)
}

func (f *Fake) check(w http.ResponseWriter, r *http.Request) {
	if !f.answer(w, r) {
		return
	}
	f.mu.Lock()
	f.checks++
	f.wake()
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":%q}`, f.PhoneNumberID)
}

type sendBody struct {
	MessagingProduct string `json:"messaging_product"`
	To               string `json:"to"`
	Type             string `json:"type"`
	Context          *struct {
		MessageID string `json:"message_id"`
	} `json:"context"`
	Text *struct {
		Body string `json:"body"`
	} `json:"text"`
	Image    *sendMedia `json:"image"`
	Document *sendMedia `json:"document"`
	Audio    *sendMedia `json:"audio"`
	Video    *sendMedia `json:"video"`
	Template *struct {
		Name     string `json:"name"`
		Language struct {
			Code string `json:"code"`
		} `json:"language"`
		Components []struct {
			Type       string `json:"type"`
			Parameters []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"parameters"`
		} `json:"components"`
	} `json:"template"`
}

// sendMedia is the media object of a sent image, document, audio or video
// message.
type sendMedia struct {
	ID       string `json:"id"`
	Link     string `json:"link"`
	Caption  string `json:"caption"`
	Filename string `json:"filename"`
}

func (b *sendBody) media() *sendMedia {
	switch b.Type {
	case "image":
		return b.Image
	case "document":
		return b.Document
	case "audio":
		return b.Audio
	case "video":
		return b.Video
	}
	return nil
}

func (f *Fake) messages(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	if !f.answer(w, r) {
		return
	}
	var b sendBody
	if err := json.Unmarshal(body, &b); err != nil || b.MessagingProduct != "whatsapp" || b.To == "" {
		writeError(w, GraphError(http.StatusBadRequest, 100, "(#100) Invalid parameter"))
		return
	}
	s := Sent{To: b.To, Type: b.Type, Auth: r.Header.Get("Authorization")}
	switch {
	case b.Type == "text" && b.Text != nil:
		s.Text = b.Text.Body
		if n := len([]rune(s.Text)); n == 0 || n > 4096 {
			writeError(w, GraphError(http.StatusBadRequest, 100, "(#100) Param text['body'] must be at most 4096 characters long."))
			return
		}
	case b.Type == "template" && b.Template != nil && b.Template.Name != "":
		s.Template, s.Language = b.Template.Name, b.Template.Language.Code
		for _, c := range b.Template.Components {
			for _, p := range c.Parameters {
				s.Params = append(s.Params, p.Text)
			}
		}
	case b.media() != nil:
		m := b.media()
		if !f.uploadedMedia(m.ID) {
			writeError(w, GraphError(http.StatusBadRequest, 131053, "(#131053) Media upload error: unknown media id"))
			return
		}
		if n := len([]rune(m.Caption)); n > 1024 || m.Caption != "" && b.Type == "audio" {
			writeError(w, GraphError(http.StatusBadRequest, 100, "(#100) Invalid parameter: caption"))
			return
		}
		s.MediaID, s.Caption, s.Filename = m.ID, m.Caption, m.Filename
	default:
		writeError(w, GraphError(http.StatusBadRequest, 100, "(#100) Invalid parameter"))
		return
	}
	if b.Context != nil {
		s.ReplyTo = b.Context.MessageID
	}
	f.mu.Lock()
	if s.Type != "template" {
		if last, ok := f.lastIn[s.To]; !ok || f.now().Sub(last) >= Window {
			f.mu.Unlock()
			writeError(w, GraphError(http.StatusBadRequest, 131047,
				"(#131047) Re-engagement message: more than 24 hours have passed since the recipient last replied to the sender number."))
			return
		}
	}
	f.seq++
	s.ID = fmt.Sprintf("wamid.FAKE%06d", f.seq)
	f.sent = append(f.sent, s)
	f.wake()
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"messaging_product":"whatsapp","contacts":[{"input":%q,"wa_id":%q}],"messages":[{"id":%q}]}`, s.To, s.To, s.ID)
}

// Reply returns the accepted messages to user, in order.
func (f *Fake) Reply(user string) []Sent {
	var out []Sent
	for _, s := range f.Sent() {
		if s.To == user {
			out = append(out, s)
		}
	}
	return out
}

// RepliesTo counts the accepted messages that quote message id
// (context.message_id): the answers the user sees to it.
func (f *Fake) RepliesTo(id string) int {
	n := 0
	for _, s := range f.Sent() {
		if s.ReplyTo == id {
			n++
		}
	}
	return n
}
