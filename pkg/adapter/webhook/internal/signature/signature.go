// SPDX-License-Identifier: Apache-2.0

package signature

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names. net/http canonicalises them; the spellings here are the ones
// the specifications use.
const (
	HeaderGitHub    = "X-Hub-Signature-256"
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// Tolerance is how far webhook-timestamp may be from the receiver's clock,
// in either direction (Standard Webhooks recommends 5 minutes).
const Tolerance = 5 * time.Minute

// SecretPrefix marks a Standard Webhooks secret whose remainder is the
// base64-encoded key.
const SecretPrefix = "whsec_"

// Verification failures. Each is safe to show to the sender and to log: none
// carries key material.
var (
	// ErrMissing: the signature header (or a Standard Webhooks header) is
	// absent.
	ErrMissing = errors.New("missing signature")
	// ErrScheme: a signature header is present but not in a scheme this
	// package verifies (sha1=, v1a, garbage).
	ErrScheme = errors.New("unsupported signature scheme")
	// ErrTimestamp: webhook-timestamp is not a Unix time in seconds or is
	// more than Tolerance away from now.
	ErrTimestamp = errors.New("timestamp outside tolerance")
	// ErrMismatch: well-formed, but no signature matches the body.
	ErrMismatch = errors.New("signature mismatch")
)

// StandardKey returns the HMAC key of a Standard Webhooks secret: the
// base64-decoded remainder of a "whsec_" secret, or the secret bytes
// themselves otherwise ("raw" secrets, as the reference library's
// NewWebhookSymmetricRaw).
func StandardKey(secret []byte) ([]byte, error) {
	s := string(secret)
	if !strings.HasPrefix(s, SecretPrefix) {
		if len(secret) == 0 {
			return nil, errors.New("empty secret")
		}
		return secret, nil
	}
	enc := strings.TrimPrefix(s, SecretPrefix)
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		// Some generators omit the padding.
		key, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(enc, "="))
	}
	if err != nil {
		return nil, errors.New("whsec_ secret is not valid base64")
	}
	if len(key) == 0 {
		return nil, errors.New("whsec_ secret has an empty key")
	}
	return key, nil
}

// standardMAC computes HMAC-SHA256(key, id "." timestamp "." body) into dst
// without concatenating the body.
func standardMAC(dst *[sha256.Size]byte, key []byte, id, timestamp string, body []byte) {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	mac.Sum(dst[:0])
}

// SignStandard returns the webhook-signature value "v1,<base64>" for the
// message id, the timestamp header value and the raw body.
func SignStandard(key []byte, id, timestamp string, body []byte) string {
	var sum [sha256.Size]byte
	standardMAC(&sum, key, id, timestamp, body)
	return "v1," + base64.StdEncoding.EncodeToString(sum[:])
}

// Timestamp formats t as a webhook-timestamp value.
func Timestamp(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// VerifyStandard checks a Standard Webhooks request: id and timestamp are
// the webhook-id and webhook-timestamp header values, signatures the
// webhook-signature value (space-separated "version,base64" entries; any
// matching v1 entry suffices, other versions are skipped so that a sender
// rotating keys or adding asymmetric signatures is accepted). Comparisons
// are constant-time.
func VerifyStandard(key []byte, id, timestamp, signatures string, body []byte, now time.Time) error {
	if id == "" || timestamp == "" || signatures == "" {
		var missing []string
		for _, h := range []struct{ name, v string }{{HeaderID, id}, {HeaderTimestamp, timestamp}, {HeaderSignature, signatures}} {
			if h.v == "" {
				missing = append(missing, h.name)
			}
		}
		return fmt.Errorf("%w: no %s header", ErrMissing, strings.Join(missing, ", "))
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: webhook-timestamp is not Unix seconds", ErrTimestamp)
	}
	// Compare in seconds: time.Unix of an extreme value overflows Duration.
	tol := int64(Tolerance / time.Second)
	if d := now.Unix() - ts; d > tol || d < -tol {
		return fmt.Errorf("%w: webhook-timestamp is %ds from now, limit %ds", ErrTimestamp, d, tol)
	}
	var want [sha256.Size]byte
	standardMAC(&want, key, id, timestamp, body)
	var got [sha256.Size + 3]byte // room for a decoder that needs slack
	sawV1 := false
	for _, entry := range strings.Fields(signatures) {
		version, sig, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		sawV1 = true
		if base64.StdEncoding.DecodedLen(len(sig)) > len(got) {
			continue
		}
		n, err := base64.StdEncoding.Decode(got[:], []byte(sig))
		if err != nil {
			continue
		}
		if hmac.Equal(got[:n], want[:]) {
			return nil
		}
	}
	if !sawV1 {
		return fmt.Errorf("%w: no v1 entry in webhook-signature", ErrScheme)
	}
	return ErrMismatch
}

// SignGitHub returns the X-Hub-Signature-256 value "sha256=<hex>" of body.
// GitHub uses the secret text as the HMAC key, whatever its form.
func SignGitHub(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifyGitHub checks an X-Hub-Signature-256 header value against body with
// a constant-time comparison.
func VerifyGitHub(secret []byte, header string, body []byte) error {
	if header == "" {
		return fmt.Errorf("%w: no %s header", ErrMissing, HeaderGitHub)
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return fmt.Errorf("%w: %s must start with sha256=", ErrScheme, HeaderGitHub)
	}
	var got [sha256.Size]byte
	if len(hexSig) != 2*sha256.Size {
		return ErrMismatch
	}
	if _, err := hex.Decode(got[:], []byte(hexSig)); err != nil {
		return ErrMismatch
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	var want [sha256.Size]byte
	mac.Sum(want[:0])
	if !hmac.Equal(got[:], want[:]) {
		return ErrMismatch
	}
	return nil
}
