// SPDX-License-Identifier: Apache-2.0

// Package wire holds the JSON of the Mattermost REST API v4 that both the
// adapter and its fake server (mattermosttest) speak, so that a post the
// fake writes is a post the adapter reads, and a request the adapter sends
// is one the fake decodes.
//
// The answer types carry the server's tags: a post's fields are always
// present in its answers (empty strings and zeros included) but for
// file_ids and metadata, and width and height of a FileInfo, which the
// server leaves out when empty. A reader tolerates any field absent. A
// request (NewPost) leaves out what is empty, so that it never sends a
// zero id.
package wire
