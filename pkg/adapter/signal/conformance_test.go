// SPDX-License-Identifier: Apache-2.0

package signal

import (
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/signal/signaltest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestConformance(t *testing.T) {
	adaptertest.Conformance(t, adaptertest.Platform[Config]{
		Type: TypeName,
		Configure: func(t testing.TB, c *Config, url string) {
			c.URL = url
			c.RequestTimeout = testRequestTimeout
		},
		Fake: func(t testing.TB) adaptertest.Fake {
			fake := signaltest.New(t, account)
			return adaptertest.Fake{
				URL: fake.URL,
				Blackhole: func(t testing.TB) {
					fake.Wait(t, wait, "an open stream", func() bool { return fake.Opened() > 0 })
					fake.Blackhole()
				},
				Twice: func(t testing.TB) {
					// A replay: the daemon writes one envelope twice.
					env := fake.Message("twice")
					fake.Push(env)
					fake.Push(env)
				},
				Media: func(t testing.TB, _ string) (*message.Inbound, *message.Attachment, []byte) {
					// The daemon keeps what it receives: the message
					// with the file is pushed, its attachment fetched
					// by id from the sender.
					data := []byte("\x89PNG conformance")
					env := fake.Message("")
					env.Attachments = []signaltest.Attachment{{ContentType: "image/png", ID: "conformance.png", Data: data}}
					fake.Push(env)
					att := message.Attachment{Kind: message.MediaImage, Ref: "conformance.png", MIME: "image/png"}
					return &message.Inbound{Platform: TypeName, ChatID: env.Source, Attachments: []message.Attachment{att}}, &att, data
				},
			}
		},
		Outbound: &message.Outbound{Platform: TypeName, ChatID: "+15550001", Text: "hello"},
	})
}
