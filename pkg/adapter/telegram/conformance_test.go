// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"testing"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/telegram/telegramtest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestConformance(t *testing.T) {
	adaptertest.Conformance(t, adaptertest.Platform[Config]{
		Type: TypeName,
		Configure: func(t testing.TB, c *Config, url string) {
			c.Token = adaptertest.SecretFile(t, "token", telegramtest.DefaultToken)
			c.APIURL = url
			c.PollTimeout = testPollTimeout
		},
		Fake: func(t testing.TB) adaptertest.Fake {
			fake := telegramtest.New(t, telegramtest.DefaultToken)
			return adaptertest.Fake{
				URL: fake.URL,
				Blackhole: func(t testing.TB) {
					// The next long poll is never answered.
					fake.Script("getUpdates", telegramtest.Blackhole())
					fake.Wait(t, wait, "a blackholed poll", func() bool { return fake.Blackholed() == 1 })
				},
				Redeliver: func(t testing.TB, _ adapter.Adapter, start func()) {
					// Both copies wait in one batch: the second comes
					// after the first was stored.
					for range 2 {
						fake.Push(telegramtest.Update{UpdateID: 7, Message: &telegramtest.Message{MessageID: 3, From: &ann, Chat: dm, Text: "twice"}})
					}
					start()
				},
				Media: func(t testing.TB, _ string) (*message.Inbound, *message.Attachment, []byte) {
					data := []byte("\x89PNG conformance")
					fake.AddFile("conformance", telegramtest.File{Data: data})
					return &message.Inbound{Platform: "telegram", ChatID: "555"},
						&message.Attachment{Kind: message.MediaImage, Ref: "conformance", MIME: "image/png"}, data
				},
			}
		},
		Outbound: &message.Outbound{Platform: "telegram", ChatID: "555", Text: "hello"},
	})
}
