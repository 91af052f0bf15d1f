// SPDX-License-Identifier: Apache-2.0

package message

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateMedia(t *testing.T) {
	base := func() Inbound {
		return Inbound{Platform: "p", EventID: "e", ChatID: "c", ChatType: ChatDirect, SenderID: "u"}
	}
	ok := base()
	ok.Attachments = []Attachment{{Kind: MediaImage, Ref: "file-1", Size: 10}}
	ok.Unsupported = []string{"sticker"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid message refused: %v", err)
	}
	for name, mut := range map[string]func(*Inbound){
		"unknown kind": func(m *Inbound) { m.Attachments = []Attachment{{Kind: "sticker", Ref: "x"}} },
		"no ref":       func(m *Inbound) { m.Attachments = []Attachment{{Kind: MediaFile}} },
		"long ref": func(m *Inbound) {
			m.Attachments = []Attachment{{Kind: MediaFile, Ref: strings.Repeat("x", MaxRefBytes+1)}}
		},
		"negative size":        func(m *Inbound) { m.Attachments = []Attachment{{Kind: MediaFile, Ref: "x", Size: -1}} },
		"too many":             func(m *Inbound) { m.Attachments = make([]Attachment, MaxAttachments+1) },
		"empty unsupported":    func(m *Inbound) { m.Unsupported = []string{""} },
		"spaced unsupported":   func(m *Inbound) { m.Unsupported = []string{"a b"} },
		"too many unsupported": func(m *Inbound) { m.Unsupported = make([]string, MaxAttachments+1) },
	} {
		m := base()
		mut(&m)
		if err := m.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", name, err)
		}
	}
}
