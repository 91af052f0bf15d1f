// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"encoding/json"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/slack/slacktest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestConformance(t *testing.T) {
	var fake *slacktest.Server
	adaptertest.Conformance(t, adaptertest.Platform[Config]{
		Type: TypeName,
		Configure: func(t testing.TB, c *Config, url string) {
			app, bot := "xapp-1-A-1", "xoxb-1"
			if fake != nil {
				app, bot = fake.AppToken(), fake.BotToken()
			}
			c.AppToken = adaptertest.SecretFile(t, "app", app)
			c.BotToken = adaptertest.SecretFile(t, "bot", bot)
			c.APIURL = url
		},
		Fake: func(t testing.TB) adaptertest.Fake {
			f := slacktest.New(fastOptions())
			t.Cleanup(f.Close)
			fake = f
			t.Cleanup(func() { fake = nil })
			return adaptertest.Fake{
				URL: f.APIURL(),
				Twice: func(t testing.TB) {
					f.WaitHellos(t, 1, wait)
					p := f.PushEvent(slacktest.Event{Channel: "D1", ChannelType: "im", User: "U1", Text: "twice"})
					f.WaitAck(t, p.EventID, wait)
					f.Redeliver(p.EventID)
				},
				Media: func(t testing.TB, base string) (*message.Inbound, *message.Attachment, []byte) {
					data := []byte("\x89PNG conformance")
					raw, err := json.Marshal(f.AddFile(slacktest.File{Name: "shot.png", Mimetype: "image/png", Data: data}))
					var file slackFile
					if err == nil {
						err = json.Unmarshal(raw, &file)
					}
					if err != nil {
						t.Fatal(err)
					}
					file.URLPrivateDownload = adaptertest.OnHost(t, file.URLPrivateDownload, base)
					atts, _ := fileAttachments([]slackFile{file})
					if len(atts) != 1 {
						t.Fatalf("file %+v: attachments %+v", file, atts)
					}
					return &message.Inbound{Platform: "slack", ChatID: "D1", Attachments: atts}, &atts[0], data
				},
			}
		},
		Outbound: &message.Outbound{Platform: "slack", ChatID: "D1", Text: "hello"},
	})
}
