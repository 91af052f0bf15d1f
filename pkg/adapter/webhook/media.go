// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"fmt"
	"strings"

	"github.com/heraldgw/herald/pkg/message"
)

// inboundAttachment is one entry of an inbound body's attachments.
type inboundAttachment struct {
	URL  string `json:"url"`
	Name string `json:"name"`
	MIME string `json:"mime"`
	// Kind is image, file, voice, audio or video; default image for an
	// image/* mime, else file.
	Kind string `json:"kind"`
}

// attachments turns an inbound body's attachments into the message's: each
// needs an http(s) URL (herald fetches it with its guarded client) and a
// known kind, which defaults to image for an image/* type, else file.
func attachments(in []inboundAttachment) ([]message.Attachment, error) {
	var atts []message.Attachment
	for i, at := range in {
		if !strings.HasPrefix(at.URL, "http://") && !strings.HasPrefix(at.URL, "https://") {
			return nil, fmt.Errorf("attachments[%d].url must be an http:// or https:// URL", i)
		}
		kind := message.MediaKind(at.Kind)
		if at.Kind == "" {
			kind = message.MediaFile
			if strings.HasPrefix(at.MIME, "image/") {
				kind = message.MediaImage
			}
		}
		if !kind.Valid() {
			return nil, fmt.Errorf("attachments[%d].kind %q is not one of image, file, voice, audio, video", i, truncate(at.Kind, 32))
		}
		atts = append(atts, message.Attachment{Kind: kind, Ref: at.URL, Name: at.Name, MIME: at.MIME})
	}
	return atts, nil
}
