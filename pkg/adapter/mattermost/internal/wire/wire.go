// SPDX-License-Identifier: Apache-2.0

package wire

// Post is a post as the server answers it, in a post list and in the post
// of a posted event.
type Post struct {
	ID            string         `json:"id"`
	CreateAt      int64          `json:"create_at"`
	UpdateAt      int64          `json:"update_at"`
	DeleteAt      int64          `json:"delete_at"`
	UserID        string         `json:"user_id"`
	ChannelID     string         `json:"channel_id"`
	RootID        string         `json:"root_id"`
	Message       string         `json:"message"`
	Type          string         `json:"type"`
	Props         map[string]any `json:"props"`
	PendingPostID string         `json:"pending_post_id"`
	FileIDs       []string       `json:"file_ids,omitempty"`
	Metadata      *Metadata      `json:"metadata,omitempty"`
}

// NewPost is the body of POST /api/v4/posts: what a client sets, the
// empty fields left out (the server fills id, user_id and the times).
type NewPost struct {
	ChannelID     string         `json:"channel_id"`
	RootID        string         `json:"root_id,omitempty"`
	Message       string         `json:"message"`
	Props         map[string]any `json:"props,omitempty"`
	PendingPostID string         `json:"pending_post_id,omitempty"`
	FileIDs       []string       `json:"file_ids,omitempty"`
}

// Metadata is the part of a post's metadata herald uses: the FileInfo of
// each attached file.
type Metadata struct {
	Files []FileInfo `json:"files,omitempty"`
}

// FileInfo is a file's metadata, as in a post's metadata.files and in the
// file_infos of an upload's answer.
type FileInfo struct {
	ID        string `json:"id"`
	UserID    string `json:"user_id"`
	PostID    string `json:"post_id"`
	ChannelID string `json:"channel_id"`
	CreateAt  int64  `json:"create_at"`
	Name      string `json:"name"`
	Extension string `json:"extension"`
	Size      int64  `json:"size"`
	MimeType  string `json:"mime_type"`
	Width     int    `json:"width,omitempty"`
	Height    int    `json:"height,omitempty"`
}

// PostList is the answer of the channel posts endpoints: the ids newest
// first, and the posts by id.
type PostList struct {
	Order []string         `json:"order"`
	Posts map[string]*Post `json:"posts"`
}

// Uploaded is the answer of POST /api/v4/files: a FileInfo for each file
// uploaded, and the client_ids sent with them, in the same order.
type Uploaded struct {
	FileInfos []FileInfo `json:"file_infos"`
	ClientIDs []string   `json:"client_ids"`
}
