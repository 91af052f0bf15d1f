// SPDX-License-Identifier: Apache-2.0

package matrix

import (
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/matrix/matrixtest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestConformance(t *testing.T) {
	adaptertest.Conformance(t, adaptertest.Platform[Config]{
		Type:      TypeName,
		Configure: configure,
		Fake: func(t testing.TB) adaptertest.Fake {
			fake := matrixtest.New(t)
			return adaptertest.Fake{
				URL: fake.URL,
				Blackhole: func(t testing.TB) {
					// The next /sync is never answered.
					fake.Blackhole()
					fake.Wait(t, wait, "a blackholed sync", func() bool { return fake.Blackholed() == 1 })
				},
				Twice: func(t testing.TB) {
					// The adapter skips what precedes its first sync,
					// so it starts first; then one batch comes twice.
					fake.Wait(t, wait, "a sync from the initial position", func() bool { return len(fake.Since()) >= 2 })
					fake.Redeliver()
					fake.Members(room, 2)
					fake.Text(room, ann, "twice")
				},
				Media: func(t testing.TB, _ string) (*message.Inbound, *message.Attachment, []byte) {
					data := []byte("\x89PNG conformance")
					uri := fake.AddMedia(matrixtest.Media{ContentType: "image/png", Filename: "a.png", Data: data})
					att := message.Attachment{Kind: message.MediaImage, Ref: uri, Name: "a.png"}
					return &message.Inbound{Platform: TypeName, ChatID: room, Attachments: []message.Attachment{att}}, &att, data
				},
			}
		},
		Outbound: &message.Outbound{Platform: TypeName, ChatID: room, Text: "hello", IdempotencyKey: "k1"},
	})
}

// configure fills c as testConfig does.
func configure(t testing.TB, c *Config, url string) { *c = *testConfig(t, url) }
