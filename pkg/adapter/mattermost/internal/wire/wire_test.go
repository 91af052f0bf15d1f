// SPDX-License-Identifier: Apache-2.0

package wire

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestNewPostSendsNoZeroField: a request leaves out every empty field, ids
// first; only channel_id and message are always there.
func TestNewPostSendsNoZeroField(t *testing.T) {
	b, err := json.Marshal(NewPost{ChannelID: "c", Message: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"channel_id":"c","message":"hi"}`; got != want {
		t.Fatalf("NewPost = %s, want %s", got, want)
	}
	full := NewPost{ChannelID: "c", RootID: "r", Message: "m", Props: map[string]any{"k": "v"}, PendingPostID: "p", FileIDs: []string{"f"}}
	b, _ = json.Marshal(full)
	var back NewPost
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, full) {
		t.Fatalf("round trip %s: %+v, %v", b, back, err)
	}
}

// TestPostAnswerShape: a post is written as the server writes it, every
// field present but file_ids and metadata when empty.
func TestPostAnswerShape(t *testing.T) {
	b, _ := json.Marshal(Post{ID: "p"})
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"id", "create_at", "update_at", "delete_at", "user_id", "channel_id", "root_id", "message", "type", "props", "pending_post_id"} {
		if _, ok := m[k]; !ok {
			t.Errorf("%s missing from %s", k, b)
		}
	}
	for _, k := range []string{"file_ids", "metadata"} {
		if _, ok := m[k]; ok {
			t.Errorf("empty %s written: %s", k, b)
		}
	}
	b, _ = json.Marshal(FileInfo{ID: "f"})
	if err := json.Unmarshal(b, &m); err != nil || m["width"] != nil || m["height"] != nil {
		t.Fatalf("FileInfo without a size: %s", b)
	}
}

// TestPostToleratesAbsentFields: an answer with only some fields (an
// older server, a proxy) decodes, the rest zero.
func TestPostToleratesAbsentFields(t *testing.T) {
	var l PostList
	in := `{"order":["p"],"posts":{"p":{"id":"p","channel_id":"c","message":"m","metadata":{"files":[{"id":"f"}]}}}}`
	if err := json.Unmarshal([]byte(in), &l); err != nil {
		t.Fatal(err)
	}
	p := l.Posts["p"]
	if p == nil || p.ID != "p" || p.ChannelID != "c" || p.Message != "m" || p.RootID != "" || p.Props != nil || p.CreateAt != 0 ||
		len(p.Metadata.Files) != 1 || p.Metadata.Files[0].ID != "f" {
		t.Fatalf("decoded %+v", p)
	}
}
