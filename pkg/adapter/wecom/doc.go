// SPDX-License-Identifier: Apache-2.0

// Package wecom is herald's adapter for WeCom (企业微信), as a self-built
// application (自建应用) in callback mode.
//
// WeCom reaches herald only through the application's callback URL on
// herald's HTTP listener (a passive platform: socket activation starts
// herald for it). WeCom first checks the URL with a GET carrying
// msg_signature, timestamp, nonce and an encrypted echostr, which herald
// decrypts and echoes. Every message then arrives as a POST of an XML
// envelope whose Encrypt element holds the message, AES-256-CBC encrypted
// with the EncodingAESKey and signed with the token (msg_signature, a SHA-1
// of the sorted token, timestamp, nonce and ciphertext). herald answers
// 200 with an empty body only once the message is stored; WeCom retries an
// unanswered callback, and the store deduplicates the retries on MsgId.
//
// Replies go out with POST /cgi-bin/message/send, authenticated with an
// access_token from GET /cgi-bin/gettoken (corp id and the application's
// secret), cached and renewed before it expires, and renewed once more
// when WeCom answers 42001 (expired) or 40014 (invalid). Media go through
// the temporary media API: received files are fetched by MediaId with
// media/get, replies upload theirs with media/upload and send the media_id.
package wecom
