// SPDX-License-Identifier: Apache-2.0

// Package whatsapp is herald's adapter for the WhatsApp Business Platform
// Cloud API, which Meta hosts on its Graph API.
//
// WhatsApp reaches herald only through webhooks: Meta POSTs every inbound
// message and every status change of a sent message to a callback URL,
// signed with the app secret (X-Hub-Signature-256), after a one-time GET
// handshake that echoes hub.challenge when hub.verify_token matches. The
// adapter serves that URL on herald's HTTP listener (a passive platform:
// socket activation starts herald for it) and answers 200 only once every
// message of the request is stored; Meta retries anything else for up to
// seven days, and the store deduplicates the redeliveries on the message id
// (wamid).
//
// Replies go out with POST /{version}/{phone-number-id}/messages. WhatsApp
// lets a business send free-form messages only within 24 hours of the
// user's last message (the customer-service window); the adapter records
// each user's last message time in its state directory and refuses a
// free-form send outside the window, or sends the configured template for
// a push (a message that answers nothing).
package whatsapp
