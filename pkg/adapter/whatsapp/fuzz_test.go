// SPDX-License-Identifier: Apache-2.0

package whatsapp

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/whatsapp/whatsapptest"
)

// FuzzNotification: any correctly signed body is answered 200 (stored or
// skipped) or 400 (not a notification), never a panic, and every message
// stored is valid.
func FuzzNotification(f *testing.F) {
	f.Add(whatsapptest.Notification(whatsapptest.DefaultPhoneNumberID,
		[]whatsapptest.Message{{ID: "wamid.1", From: "49", Text: "hi"}},
		[]whatsapptest.Status{{ID: "wamid.2", Status: "failed", ErrorCode: 1}}))
	f.Add([]byte(`{"entry":[{"changes":[{"value":{"messages":[{"id":"w","from":"","type":"text","text":{"body":"x"}}]}}]}]}`))
	f.Add([]byte(`{"entry":[{"changes":[{"value":{"messages":[{"id":"w","from":"1","type":"text","timestamp":"99999999999999999999"}]}}]}]}`))
	f.Add([]byte(`null`))
	f.Add(whatsapptest.Notification(whatsapptest.DefaultPhoneNumberID, []whatsapptest.Message{
		{ID: "wamid.m", From: "49", Type: "document", MediaID: "1", MIME: "application/pdf", Filename: "r.pdf", Caption: "c"},
		{ID: "wamid.s", From: "49", Type: "sticker", MediaID: "2"}, {ID: "wamid.l", From: "49", Type: "Lo cation!"}}, nil))
	h := newHarness(f, "", nil)
	// The fuzz target may not log through f.
	h.env.Log.Logger.SetOutput(io.Discard)
	h.start()
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := whatsapptest.NewRequest(t.Context(), h.a.Path(), h.fake.AppSecret, body)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		h.a.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK && rec.Code != http.StatusBadRequest && rec.Code != http.StatusRequestEntityTooLarge {
			t.Fatalf("answered %d %s", rec.Code, rec.Body)
		}
		for _, m := range h.inbox.Messages() {
			if err := m.Validate(); err != nil {
				t.Fatalf("stored an invalid message: %v", err)
			}
		}
	})
}
