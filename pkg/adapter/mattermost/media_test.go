// SPDX-License-Identifier: Apache-2.0

package mattermost

import (
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/mattermost/mattermosttest"
	"github.com/heraldgw/herald/pkg/message"
)

// A post's files become attachments with their FileInfo, in file_ids
// order, the message their caption; a post with only files is a message;
// a voice message's file is a voice note; a plugin's post is counted as
// unsupported and still reaches the core, which answers it.
func TestInboundFiles(t *testing.T) {
	h := newHarness(t, nil, "", nil)
	h.connected(t)
	png := []byte("\x89PNG\r\n\x1a\nimage")
	p := h.fake.PostFiles("dm", "ann", "what is this?",
		mattermosttest.File{Name: "shot.png", MimeType: "image/png", Data: png, Width: 640, Height: 480},
		mattermosttest.File{Name: "report.pdf", MimeType: "application/pdf", Data: []byte("%PDF-1.7")},
		mattermosttest.File{Name: "clip.mp4", MimeType: "video/mp4", Data: []byte("mp4")},
		mattermosttest.File{Name: "song.mp3", MimeType: "audio/mpeg", Data: []byte("ID3")})
	only := h.fake.PostFiles("dm", "ann", "", mattermosttest.File{Name: "a.txt", MimeType: "text/plain", Data: []byte("hi")})
	voice := h.fake.PostType("dm", "ann", "", postTypeVoice, mattermosttest.File{Name: "rec.m4a", MimeType: "audio/mp4", Data: []byte("m4a")})
	plugin := h.fake.PostType("dm", "ann", "", "custom_poll")
	msgs := h.inbox.WaitN(t, 4, wait)
	m := msgs[0]
	if m.EventID != p.ID || m.Text != "what is this?" || len(m.Attachments) != 4 || len(m.Unsupported) != 0 {
		t.Fatalf("message %+v", m)
	}
	want := []message.Attachment{
		{Kind: message.MediaImage, Ref: p.FileIDs[0], Name: "shot.png", MIME: "image/png", Size: int64(len(png)), Width: 640, Height: 480},
		{Kind: message.MediaFile, Ref: p.FileIDs[1], Name: "report.pdf", MIME: "application/pdf", Size: 8},
		{Kind: message.MediaVideo, Ref: p.FileIDs[2], Name: "clip.mp4", MIME: "video/mp4", Size: 3},
		{Kind: message.MediaAudio, Ref: p.FileIDs[3], Name: "song.mp3", MIME: "audio/mpeg", Size: 3},
	}
	if got, w := mustJSON(t, m.Attachments), mustJSON(t, want); got != w {
		t.Fatalf("attachments\n got %s\nwant %s", got, w)
	}
	if m := msgs[1]; m.EventID != only.ID || m.Text != "" || len(m.Attachments) != 1 || m.Attachments[0].Name != "a.txt" {
		t.Fatalf("attachment-only post: %+v", m)
	}
	if m := msgs[2]; m.EventID != voice.ID || len(m.Attachments) != 1 || m.Attachments[0].Kind != message.MediaVoice {
		t.Fatalf("voice message: %+v", m)
	}
	if m := msgs[3]; m.EventID != plugin.ID || len(m.Attachments) != 0 || len(m.Unsupported) != 1 || m.Unsupported[0] != "plugin_post" {
		t.Fatalf("plugin post: %+v", m)
	}
	if n := h.metrics.Rejections("no_text"); n != 0 {
		t.Errorf("no_text counted %d times", n)
	}
}

// In a channel with mention_only, a post with files and no mention is not
// for herald, as a text post would not be; with the mention it is.
func TestInboundFilesMentionGating(t *testing.T) {
	h := newHarness(t, nil, "", nil)
	h.connected(t)
	h.fake.PostFiles("town", "ann", "", mattermosttest.File{Name: "a.png", MimeType: "image/png", Data: []byte("x")})
	p := h.fake.PostFiles("town", "ann", "@herald look", mattermosttest.File{Name: "b.png", MimeType: "image/png", Data: []byte("y")})
	m := h.inbox.WaitN(t, 1, wait)[0]
	if m.EventID != p.ID || len(m.Attachments) != 1 || m.Attachments[0].Name != "b.png" {
		t.Fatalf("message %+v", m)
	}
	eventually(t, "not_mentioned counted", func() bool { return h.metrics.Rejections("not_mentioned") == 1 })
}

// Posts are read without metadata by old servers, and file_ids may name
// files metadata.files lacks: such a file is still passed on, as a file
// of unknown type.
func TestAttachmentsWithoutMetadata(t *testing.T) {
	atts, unsupported := attachments(&post{FileIDs: []string{"f1", "f2", "f1", ""},
		Metadata: &postMetadata{Files: []fileInfo{{ID: "f2", Name: "x.jpg", MimeType: "image/jpeg", Size: -5}}}})
	if len(unsupported) != 0 || len(atts) != 2 {
		t.Fatalf("attachments %+v, unsupported %v", atts, unsupported)
	}
	if a := atts[0]; a.Kind != message.MediaFile || a.Ref != "f1" || a.Name != "" {
		t.Errorf("first %+v", a)
	}
	if a := atts[1]; a.Kind != message.MediaImage || a.Ref != "f2" || a.Size != 0 {
		t.Errorf("second %+v", a)
	}
	// metadata.files alone (no file_ids) is read too.
	atts, _ = attachments(&post{Metadata: &postMetadata{Files: []fileInfo{{ID: "f3", MimeType: "audio/ogg"}}}})
	if len(atts) != 1 || atts[0].Ref != "f3" || atts[0].Kind != message.MediaAudio {
		t.Fatalf("metadata only: %+v", atts)
	}
	// A system post is still skipped silently, files or not.
	h := newHarness(t, nil, "", nil)
	if msg, reason := h.a.inbound(&post{ID: "p", ChannelID: "town", UserID: "ann", Type: "system_join_channel", FileIDs: []string{"f"}}, "O", &user{ID: mmBot()}); msg != nil || reason != "" {
		t.Fatalf("system post: %+v, %q", msg, reason)
	}
}
