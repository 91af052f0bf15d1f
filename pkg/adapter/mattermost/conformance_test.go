// SPDX-License-Identifier: Apache-2.0

package mattermost

import (
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/mattermost/mattermosttest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestConformance(t *testing.T) {
	adaptertest.Conformance(t, adaptertest.Platform[Config]{
		Type:      TypeName,
		Configure: configure,
		Fake: func(t testing.TB) adaptertest.Fake {
			fake := mattermosttest.New(t, mattermosttest.DefaultToken)
			return adaptertest.Fake{
				URL: fake.URL,
				Blackhole: func(t testing.TB) {
					fake.Wait(t, wait, "a websocket", func() bool { return fake.Connections() == 1 })
					fake.Blackhole()
				},
				Twice: func(t testing.TB) {
					fake.Wait(t, wait, "a websocket", func() bool { return fake.Connections() == 1 })
					fake.PostTwice("dm", "ann", "twice")
				},
				Media: func(t testing.TB, _ string) (*message.Inbound, *message.Attachment, []byte) {
					// A post with a file, as the intake stores it.
					data := []byte("\x89PNG conformance")
					p := fake.PostFiles("dm", "ann", "", mattermosttest.File{Name: "a.png", MimeType: "image/png", Data: data})
					att := message.Attachment{Kind: message.MediaImage, Ref: p.FileIDs[0], Name: "a.png", MIME: "image/png", Size: int64(len(data))}
					return &message.Inbound{Platform: TypeName, ChatID: p.ChannelID, MessageID: p.ID, Attachments: []message.Attachment{att}}, &att, data
				},
			}
		},
		Outbound: &message.Outbound{Platform: TypeName, ChatID: "town", Text: "hello"},
	})
}

// configure fills a Config for the fake at url with the fake's token.
func configure(t testing.TB, c *Config, url string) {
	c.Token = adaptertest.SecretFile(t, "token", mattermosttest.DefaultToken)
	c.URL = url
}
