// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/discord/discordtest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestConformance(t *testing.T) {
	adaptertest.Conformance(t, adaptertest.Platform[Config]{
		Type: TypeName,
		Configure: func(t testing.TB, c *Config, url string) {
			c.Token = adaptertest.SecretFile(t, "token", discordtest.DefaultToken)
			c.APIURL = url
		},
		Fake: func(t testing.TB) adaptertest.Fake {
			srv := discordtest.New(t, discordtest.Options{})
			return adaptertest.Fake{
				URL: srv.APIURL,
				Blackhole: func(t testing.TB) {
					// The live connection stops reading: a close
					// handshake is never answered.
					if err := srv.Deafen(); err != nil {
						t.Fatal(err)
					}
					srv.Await(t, "server deaf", wait, srv.Deafened)
				},
				Twice: func(t testing.TB) {
					// The same message twice, as a resumed session
					// replays what the last one already handled.
					srv.PushMessage(discordtest.Msg{ID: "900000000000000001", Content: "twice"})
					srv.PushMessage(discordtest.Msg{ID: "900000000000000001", Content: "twice"})
				},
				Media: func(t testing.TB, base string) (*message.Inbound, *message.Attachment, []byte) {
					data := []byte("\x89PNG conformance")
					obj := srv.AddAttachment("200000000000000001", "900000000000000002", discordtest.Attachment{Name: "a.png", ContentType: "image/png", Data: data})
					obj["url"] = adaptertest.OnHost(t, obj["url"].(string), base)
					in, att := attachmentOf(t, obj, "200000000000000001", "900000000000000002")
					return in, att, data
				},
			}
		},
		Outbound: &message.Outbound{Platform: "discord", ChatID: "200000000000000001", Text: "hello"},
	})
}
