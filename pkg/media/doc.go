// SPDX-License-Identifier: Apache-2.0

// Package media holds herald's media machinery, independent of any platform
// and of the dispatcher: a content-addressed store, type sniffing, signed
// URLs, a guarded HTTP fetcher, outbound path checks, reply parsing, a
// transcription client and one-line descriptions.
//
// Guarantees:
//   - Store: a file is named by the SHA-256 of its bytes and only appears
//     under its name complete: it is written to a temporary file in the same
//     directory, fsynced, renamed and the directory fsynced. Put reads at most
//     limit+1 bytes; over the limit it fails with adapter.ErrTooLarge, and a
//     full disk (ENOSPC, EDQUOT) fails with ErrNoSpace; in both cases no
//     partial file stays. The total size is capped (ErrStoreFull); the
//     caller prunes.
//   - Sniff looks at header bytes only and never decodes an image: a PNG
//     declaring 100000×100000 pixels costs what its header costs. The type
//     a platform declares is never trusted over the sniffed one.
//   - Signer: URLs carry the SHA-256, an expiry and an HMAC-SHA256 over both;
//     the key is 32 random bytes kept in a 0600 file, so URLs survive
//     restarts. Every failure (bad MAC, expired, missing) gets the same 404.
//   - Client: http and https only, no proxy, a deadline per request, a size
//     limit (announced or read), at most 5 redirects, and no connection to
//     loopback, private, link-local, CGNAT, multicast or unspecified
//     addresses (IPv4-mapped forms included) unless AllowPrivate: the check
//     runs on the resolved address at connect time, so neither a redirect
//     nor DNS rebinding bypasses it.
//   - LocalFile: an absolute path whose symlinks resolve under one of the
//     allowed directories, to a regular file within the size limit.
//   - Transcriber: speaks the OpenAI audio transcription API:
//     POST {base}/v1/audio/transcriptions, multipart/form-data with the
//     fields "file" (the audio file) and "model", plus
//     "response_format=json"; the answer is a JSON object {"text": "..."}.
//     The key goes in "Authorization: Bearer <key>". A 4xx answer is
//     permanent (adapter.ErrPermanent), a 5xx or network failure temporary
//     (adapter.ErrTemporary).
package media
