// SPDX-License-Identifier: Apache-2.0

// Package wecomtest is a fake of WeCom (企业微信) for tests, on 127.0.0.1:
// the server API endpoints herald calls (GET /cgi-bin/gettoken, POST
// /cgi-bin/message/send) with WeCom's errcode answers and scripted
// failures (frequency limits, expired and invalid access tokens, rejected
// secrets, a request that is never answered), and the callback side:
// messages encrypted with the EncodingAESKey and signed with the token,
// posted to herald's callback URL and retried until answered, and the GET
// URL verification.
package wecomtest
