// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// Approval buttons. The prompt asking the user to approve a run's tool call
// carries two buttons on platforms that show them. A button's data is
//
//	hr1:<a|d>:<mac>
//
// where a is approve, d is deny, and mac is the first 18 bytes, base64url,
// of HMAC-SHA256 under Options.ButtonKey over the session key, the request
// id and the choice. The data is not guessable, fits Telegram's 64-byte
// callback_data, and needs nothing in memory: a press is checked against
// the pending approval in the store, so a button still works after a
// restart, and a button of an answered or expired request (or of another
// conversation) is refused.
const buttonPrefix = "hr1:"

// buttonMACLen is the number of HMAC bytes in a button's data.
const buttonMACLen = 18

// approvalButtons returns the Approve and Deny buttons for request
// requestID of session key, or nil without a key.
func (d *Dispatcher) approvalButtons(key, requestID string) []message.Button {
	if len(*d.buttonKey.Load()) == 0 {
		return nil
	}
	return []message.Button{
		{Label: "Approve", Data: d.buttonData(key, requestID, CmdApprove), Style: "primary"},
		{Label: "Deny", Data: d.buttonData(key, requestID, CmdDeny), Style: "danger"},
	}
}

func (d *Dispatcher) buttonData(key, requestID, cmd string) string {
	mac := hmac.New(sha256.New, *d.buttonKey.Load())
	fmt.Fprintf(mac, "herald approval button\x00%s\x00%s\x00%s", key, requestID, cmd)
	return buttonPrefix + cmd[:1] + ":" + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:buttonMACLen])
}

// buttonCommand returns the command a pressed button's data stands for
// (CmdApprove or CmdDeny), or "" if the data is not an approval button's.
// The MAC is checked later, against the pending approval (validButton).
func buttonCommand(data string) string {
	rest, ok := strings.CutPrefix(data, buttonPrefix)
	if !ok {
		return ""
	}
	choice, mac, ok := strings.Cut(rest, ":")
	if !ok || base64.RawURLEncoding.DecodedLen(len(mac)) != buttonMACLen {
		return ""
	}
	switch choice {
	case "a":
		return CmdApprove
	case "d":
		return CmdDeny
	}
	return ""
}

// validButton reports whether data is the button cmd of request requestID
// in session key.
func (d *Dispatcher) validButton(data, key, requestID, cmd string) bool {
	if len(*d.buttonKey.Load()) == 0 {
		return false
	}
	return hmac.Equal([]byte(data), []byte(d.buttonData(key, requestID, cmd)))
}

// SetButtonKey makes key the key that signs and checks approval buttons
// from now on (cluster mode: the key every node shares, set before the
// node runs any turn). An empty key is ignored.
func (d *Dispatcher) SetButtonKey(key []byte) {
	if len(key) == 0 {
		return
	}
	k := append([]byte(nil), key...)
	d.buttonKey.Store(&k)
}

// showsButtons reports whether the adapter of platform name shows native
// buttons.
func (d *Dispatcher) showsButtons(name string) bool {
	d.mu.Lock()
	p := d.platforms[name]
	d.mu.Unlock()
	if p == nil {
		return false
	}
	bs, ok := p.Adapter.(adapter.ButtonSender)
	return ok && bs.SendsButtons()
}
