// SPDX-License-Identifier: Apache-2.0

package wecom

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/wecom/wecomtest"
)

// The example of WeCom's callback documentation and official sample code:
// token, EncodingAESKey, corp id, and a URL verification and a message
// with their signatures, as WeCom sent them.
const (
	katToken   = "QDG6eK"
	katAESKey  = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
	katCorpID  = "wx5823bf96d3bd56c7"
	katEchoSig = "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3"
	katEchoTS  = "1409659589"
	katEchoNon = "263014780"
	katEcho    = "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
	katMsgSig  = "477715d11cdb4164915debcba66cb864d751f3e6"
	katMsgTS   = "1409659813"
	katMsgNon  = "1372623149"
	katMsg     = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q=="
)

// TestDocumentedExample: the adapter's signature check and decryption
// reproduce WeCom's published example, which pins the sort order, the
// key derivation, the IV, the 32-byte padding and the plaintext layout.
func TestDocumentedExample(t *testing.T) {
	c, err := newCrypter(katToken, katAESKey, katCorpID)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.verify(katEchoSig, katEchoTS, katEchoNon, katEcho); err != nil {
		t.Fatalf("echostr signature: %v", err)
	}
	echo, err := c.decrypt(katEcho)
	if err != nil || string(echo) != "1616140317555161061" {
		t.Fatalf("echostr: %q, %v", echo, err)
	}
	if err := c.verify(katMsgSig, katMsgTS, katMsgNon, katMsg); err != nil {
		t.Fatalf("message signature: %v", err)
	}
	plain, err := c.decrypt(katMsg)
	if err != nil {
		t.Fatal(err)
	}
	var m inMessage
	if err := xml.Unmarshal(plain, &m); err != nil {
		t.Fatal(err)
	}
	if m.FromUserName != "mycreate" || m.Content != "hello" || m.MsgID != "4561255354251345929" || m.AgentID != "218" || m.MsgType != "text" {
		t.Errorf("decrypted %+v", m)
	}
	// The fake's signature is the same function.
	if got := (wecomtest.Crypt{Token: katToken}).Sign(katMsgTS, katMsgNon, katMsg); got != katMsgSig {
		t.Errorf("fake signature %s, want %s", got, katMsgSig)
	}
}

// TestDecryptRefuses: another corp id, a changed signature, truncated or
// altered ciphertext, and keys of the wrong length are refused.
func TestDecryptRefuses(t *testing.T) {
	c, err := newCrypter(katToken, katAESKey, "ww-other")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.decrypt(katMsg); err == nil || !strings.Contains(err.Error(), "receive id") {
		t.Errorf("other corp id: %v", err)
	}
	if err := c.verify(strings.Replace(katMsgSig, "4", "5", 1), katMsgTS, katMsgNon, katMsg); err == nil {
		t.Error("altered signature accepted")
	}
	if err := c.verify(katMsgSig, "1409659814", katMsgNon, katMsg); err == nil {
		t.Error("signature accepted with another timestamp")
	}
	for _, bad := range []string{"", "not base64!", katMsg[:40] + "==", "AAAA" + katMsg[4:]} {
		if _, err := c.decrypt(bad); err == nil {
			t.Errorf("decrypt(%.12q…) succeeded", bad)
		}
	}
	for _, key := range []string{katAESKey[:42], katAESKey + "A", strings.Repeat("*", 43)} {
		if _, err := newCrypter(katToken, key, katCorpID); err == nil {
			t.Errorf("key %q accepted", key)
		}
	}
}

// TestFakeRoundTrip: what the fake seals, the adapter opens.
func TestFakeRoundTrip(t *testing.T) {
	f := wecomtest.Crypt{Token: "tok", EncodingAESKey: wecomtest.DefaultEncodingAESKey, ReceiveID: "ww1"}
	c, err := newCrypter("tok", wecomtest.DefaultEncodingAESKey, "ww1")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 11, 12, 13, 44, 100, 5000} {
		msg := []byte(strings.Repeat("消", n))
		got, err := c.decrypt(f.Encrypt(msg))
		if err != nil || string(got) != string(msg) {
			t.Errorf("%d: %v", n, err)
		}
	}
}

func xmlEnvelope(b []byte, e *envelope) bool { return xml.Unmarshal(b, e) == nil && e.Encrypt != "" }
