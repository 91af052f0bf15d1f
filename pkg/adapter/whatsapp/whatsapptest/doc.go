// SPDX-License-Identifier: Apache-2.0

// Package whatsapptest is a fake of the WhatsApp Cloud API for tests, on
// 127.0.0.1: the Graph API endpoints herald calls (GET /{version}/{phone
// number id}, POST /{version}/{phone number id}/messages) with scripted
// failures (HTTP 429, the throttling codes, an expired token, a request
// that is never answered) and the 24-hour customer-service window, and
// the webhook side: signed notifications (text messages, statuses) posted
// to herald's callback URL, redelivered until answered 200 as Meta does.
package whatsapptest
