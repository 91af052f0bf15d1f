// SPDX-License-Identifier: Apache-2.0

// Package wecomtest is a fake of WeCom (企业微信) for tests, on 127.0.0.1:
// the server API endpoints herald calls (GET /cgi-bin/gettoken, POST
// /cgi-bin/message/send) with WeCom's errcode answers (40014 for an
// unknown access token, 42001 for an expired one, 40001 for a rejected
// secret) and the faults of fakeserver at the points Token and Send (a
// request never answered, a dropped connection, frequency limits and
// other errcodes), and the callback side: messages encrypted with the
// EncodingAESKey and signed with the token, posted to herald's callback
// URL and retried until answered 200 (Sender), forged ones (Tampered), and
// the GET URL verification.
package wecomtest
