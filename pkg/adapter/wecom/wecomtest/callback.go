// SPDX-License-Identifier: Apache-2.0

package wecomtest

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// Message is an inbound message of a callback.
type Message struct {
	ID   string // MsgId
	From string // the sender's userid (FromUserName)
	Text string // Content
	At   time.Time
	// Type overrides "text": "image", "voice", "video", "file",
	// "location", "link", or "event" for an event.
	Type string
	// MediaID is the MediaId of an image, voice, video or file message
	// (default "media"); see Fake.AddMedia.
	MediaID string
	// Format is a voice message's Format (default "amr"), Recognition its
	// transcript (only when the application has voice recognition on).
	Format, Recognition string
	// AgentID overrides the fake's agent id.
	AgentID int64
}

// Crypt is one application's callback credentials: the token, the
// EncodingAESKey and the receive id (the corp id).
type Crypt struct {
	Token          string
	EncodingAESKey string
	ReceiveID      string
}

func (c Crypt) key() []byte {
	k, err := base64.StdEncoding.DecodeString(c.EncodingAESKey + "=")
	if err != nil || len(k) != 32 {
		panic("wecomtest: EncodingAESKey is not 43 characters of base64")
	}
	return k
}

// Encrypt seals msg as WeCom does: 16 random bytes, the length as 4 bytes
// big-endian, msg, the receive id, PKCS#7 padding to 32 bytes, AES-256-CBC
// with the key's first 16 bytes as IV, base64.
func (c Crypt) Encrypt(msg []byte) string {
	key := c.key()
	var buf bytes.Buffer
	random := make([]byte, 16)
	_, _ = rand.Read(random)
	buf.Write(random)
	_ = binary.Write(&buf, binary.BigEndian, uint32(len(msg)))
	buf.Write(msg)
	buf.WriteString(c.ReceiveID)
	pad := 32 - buf.Len()%32
	buf.Write(bytes.Repeat([]byte{byte(pad)}, pad))
	block, _ := aes.NewCipher(key)
	out := buf.Bytes()
	cipher.NewCBCEncrypter(block, key[:16]).CryptBlocks(out, out)
	return base64.StdEncoding.EncodeToString(out)
}

// Sign is msg_signature: hex SHA-1 of the token, timestamp, nonce and
// ciphertext, sorted and concatenated.
func (c Crypt) Sign(timestamp, nonce, encrypted string) string {
	parts := []string{c.Token, timestamp, nonce, encrypted}
	sort.Strings(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, "")))
	return hex.EncodeToString(sum[:])
}

func media(m Message) string {
	if m.MediaID == "" {
		return "media"
	}
	return m.MediaID
}

func cdata(tag, text string) string {
	return "<" + tag + "><![CDATA[" + text + "]]></" + tag + ">"
}

// Plain is the decrypted XML of a text message (or of another type).
func Plain(corpID string, agentID int64, m Message) []byte {
	at := m.At
	if at.IsZero() {
		at = time.Now()
	}
	typ := m.Type
	if typ == "" {
		typ = "text"
	}
	var b strings.Builder
	b.WriteString("<xml><ToUserName><![CDATA[" + corpID + "]]></ToUserName>")
	b.WriteString("<FromUserName><![CDATA[" + m.From + "]]></FromUserName>")
	fmt.Fprintf(&b, "<CreateTime>%d</CreateTime>", at.Unix())
	b.WriteString("<MsgType><![CDATA[" + typ + "]]></MsgType>")
	switch typ {
	case "text":
		b.WriteString("<Content>")
		_ = xml.EscapeText(&b, []byte(m.Text))
		b.WriteString("</Content>")
	case "event":
		b.WriteString("<Event><![CDATA[enter_agent]]></Event><EventKey><![CDATA[]]></EventKey>")
	case "image":
		b.WriteString("<PicUrl><![CDATA[https://example.invalid/p.jpg]]></PicUrl>" + cdata("MediaId", media(m)))
	case "voice":
		format := m.Format
		if format == "" {
			format = "amr"
		}
		b.WriteString(cdata("MediaId", media(m)) + cdata("Format", format))
		if m.Recognition != "" {
			b.WriteString(cdata("Recognition", m.Recognition))
		}
	case "video":
		b.WriteString(cdata("MediaId", media(m)) + cdata("ThumbMediaId", "thumb-"+media(m)))
	case "file":
		b.WriteString(cdata("MediaId", media(m)))
	case "location":
		b.WriteString("<Location_X>23.134521</Location_X><Location_Y>113.358803</Location_Y><Scale>20</Scale>" + cdata("Label", "somewhere"))
	case "link":
		b.WriteString(cdata("Title", "a title") + cdata("Description", "a description") + cdata("Url", "https://example.invalid/") +
			cdata("PicUrl", "https://example.invalid/p.jpg"))
	default:
		b.WriteString(cdata("MediaId", media(m)))
	}
	if typ != "event" {
		b.WriteString("<MsgId>" + m.ID + "</MsgId>")
	}
	fmt.Fprintf(&b, "<AgentID>%d</AgentID></xml>", agentID)
	return []byte(b.String())
}

// Callback is one signed callback: the query parameters and the body.
type Callback struct {
	Query url.Values
	Body  []byte
}

// Seal encrypts plain into a callback envelope and signs it with a fresh
// timestamp and nonce.
func (c Crypt) Seal(agentID int64, plain []byte) Callback {
	enc := c.Encrypt(plain)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	nonce := strconv.FormatUint(uint64(time.Now().UnixNano())%1e10, 10)
	body := fmt.Sprintf("<xml><ToUserName><![CDATA[%s]]></ToUserName><Encrypt><![CDATA[%s]]></Encrypt><AgentID><![CDATA[%d]]></AgentID></xml>",
		c.ReceiveID, enc, agentID)
	return Callback{
		Query: url.Values{"msg_signature": {c.Sign(ts, nonce, enc)}, "timestamp": {ts}, "nonce": {nonce}},
		Body:  []byte(body),
	}
}

// Verification is the GET of the URL verification: an encrypted echostr
// whose plaintext the server must answer.
func (c Crypt) Verification(echo string) url.Values {
	enc := c.Encrypt([]byte(echo))
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	nonce := "1372623149"
	return url.Values{"msg_signature": {c.Sign(ts, nonce, enc)}, "timestamp": {ts}, "nonce": {nonce}, "echostr": {enc}}
}

// Request builds the POST of cb to base (a URL with the callback path).
func (cb Callback) Request(ctx context.Context, base string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"?"+cb.Query.Encode(), bytes.NewReader(cb.Body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/xml")
	req.Header.Set("User-Agent", "Mozilla/4.0")
	return req, nil
}

// Tampered returns cb with its signature changed, as a forger's would be.
func (cb Callback) Tampered() Callback {
	q := url.Values{}
	for k, v := range cb.Query {
		q[k] = append([]string(nil), v...)
	}
	sig := []byte(q.Get("msg_signature"))
	if sig[0] == '0' {
		sig[0] = '1'
	} else {
		sig[0] = '0'
	}
	q.Set("msg_signature", string(sig))
	return Callback{Query: q, Body: cb.Body}
}

// Sender posts callbacks to a callback URL the way WeCom does.
type Sender struct {
	Client *http.Client // nil: http.DefaultClient
	URL    string       // the callback URL
}

// Post sends cb to url once and returns the status code.
func Post(ctx context.Context, url string, cb Callback) (int, error) {
	return Sender{URL: url}.Post(ctx, cb)
}

// Deliver is Sender.Deliver with http.DefaultClient.
func Deliver(ctx context.Context, url string, cb Callback, interval time.Duration) (int, error) {
	return Sender{URL: url}.Deliver(ctx, cb, interval)
}

// Post sends cb once and returns the status code.
func (s Sender) Post(ctx context.Context, cb Callback) (int, error) {
	req, err := cb.Request(ctx, s.URL)
	if err != nil {
		return 0, err
	}
	return fakeserver.Do(s.Client, req)
}

// Deliver posts cb the way WeCom does: again, every interval (WeCom waits
// 5 seconds for an answer, then retries), until it is answered 200 or ctx
// ends. It returns how many attempts were made.
func (s Sender) Deliver(ctx context.Context, cb Callback, interval time.Duration) (int, error) {
	n, err := fakeserver.Redeliver(ctx, interval, func(ctx context.Context) (int, error) { return s.Post(ctx, cb) })
	if err != nil {
		return n, fmt.Errorf("wecomtest: %w", err)
	}
	return n, nil
}

// Verify performs the GET URL verification with q (Crypt.Verification)
// on target and returns the status code and body.
func Verify(ctx context.Context, target string, q url.Values) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target+"?"+q.Encode(), nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b), nil
}
