// SPDX-License-Identifier: Apache-2.0

package slacktest

import "regexp"

// mentionMarkup is Slack's markup for a mention that notifies: <!channel>,
// <!here>, <!everyone>, <!subteam^ID> (a user group) and <@U…> or <@W…> (a
// user), each optionally with |label.
var mentionMarkup = regexp.MustCompile(`<(!(?:channel|here|everyone|subteam\^[A-Z0-9]+)|@[UW][A-Z0-9]+)(?:\|[^>]*)?>`)

// Mentions lists the mentions Slack renders in the message: the markup
// above in the text as sent. chat.postMessage's defaults (parse "none",
// link_names off) leave a plain "@channel" as text, so only markup counts.
func (m Message) Mentions() []string {
	var out []string
	for _, sm := range mentionMarkup.FindAllStringSubmatch(m.Text, -1) {
		out = append(out, sm[1])
	}
	return out
}
