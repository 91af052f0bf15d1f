// SPDX-License-Identifier: Apache-2.0

package signature

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// The Standard Webhooks reference vector, published with the specification
// and reproduced by every reference library: matching it is what says a
// receiver's library will accept what herald sends.
const (
	vecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTS     = "1614265330"
	vecBody   = `{"test": 2432232314}`
	vecSig    = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func vecKey(t *testing.T) []byte {
	t.Helper()
	k, err := StandardKey([]byte(vecSecret))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignStandardReferenceVector(t *testing.T) {
	if got := SignStandard(vecKey(t), vecID, vecTS, []byte(vecBody)); got != vecSig {
		t.Fatalf("SignStandard(reference vector) got %q, want %q", got, vecSig)
	}
}

func TestStandardKey(t *testing.T) {
	tests := []struct {
		secret  string
		want    string
		wantErr bool
	}{
		{secret: "raw-secret", want: "raw-secret"},
		{secret: "whsec_" + "aGVsbG8=", want: "hello"},
		{secret: "whsec_" + "aGVsbG8", want: "hello"}, // unpadded
		{secret: "whsec_***", wantErr: true},
		{secret: "whsec_", wantErr: true},
		{secret: "", wantErr: true},
	}
	for _, tt := range tests {
		got, err := StandardKey([]byte(tt.secret))
		if (err != nil) != tt.wantErr || string(got) != tt.want {
			t.Errorf("StandardKey(%q) got %q, %v; want %q, error %v", tt.secret, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestVerifyStandard(t *testing.T) {
	key := vecKey(t)
	now := time.Unix(1614265330, 0)
	other := SignStandard([]byte("another key"), vecID, vecTS, []byte(vecBody))
	tests := []struct {
		name    string
		id, ts  string
		sigs    string
		body    string
		now     time.Time
		wantErr error
	}{
		{name: "valid", id: vecID, ts: vecTS, sigs: vecSig, body: vecBody, now: now},
		{name: "valid at +5m", id: vecID, ts: vecTS, sigs: vecSig, body: vecBody, now: now.Add(Tolerance)},
		{name: "valid at -5m", id: vecID, ts: vecTS, sigs: vecSig, body: vecBody, now: now.Add(-Tolerance)},
		{name: "rotated: old key first", id: vecID, ts: vecTS, sigs: other + " " + vecSig, body: vecBody, now: now},
		{name: "rotated: new key first", id: vecID, ts: vecTS, sigs: vecSig + " " + other, body: vecBody, now: now},
		{name: "asymmetric entry skipped", id: vecID, ts: vecTS, sigs: "v1a,AAAA " + vecSig, body: vecBody, now: now},
		{name: "garbage entries skipped", id: vecID, ts: vecTS, sigs: "v1,!!! v1 ,, v1," + strings.Repeat("A", 200) + " " + vecSig, body: vecBody, now: now},
		{name: "body changed", id: vecID, ts: vecTS, sigs: vecSig, body: vecBody + " ", now: now, wantErr: ErrMismatch},
		{name: "id changed", id: vecID + "x", ts: vecTS, sigs: vecSig, body: vecBody, now: now, wantErr: ErrMismatch},
		{name: "other key only", id: vecID, ts: vecTS, sigs: other, body: vecBody, now: now, wantErr: ErrMismatch},
		{name: "truncated signature", id: vecID, ts: vecTS, sigs: vecSig[:20], body: vecBody, now: now, wantErr: ErrMismatch},
		{name: "expired", id: vecID, ts: vecTS, sigs: vecSig, body: vecBody, now: now.Add(Tolerance + time.Second), wantErr: ErrTimestamp},
		{name: "from the future", id: vecID, ts: vecTS, sigs: vecSig, body: vecBody, now: now.Add(-Tolerance - time.Second), wantErr: ErrTimestamp},
		{name: "timestamp in ms", id: vecID, ts: vecTS + "000", sigs: vecSig, body: vecBody, now: now, wantErr: ErrTimestamp},
		{name: "timestamp extreme", id: vecID, ts: "-9223372036854775808", sigs: vecSig, body: vecBody, now: now, wantErr: ErrTimestamp},
		{name: "timestamp not a number", id: vecID, ts: "yesterday", sigs: vecSig, body: vecBody, now: now, wantErr: ErrTimestamp},
		{name: "wrong scheme", id: vecID, ts: vecTS, sigs: "v2," + vecSig[3:], body: vecBody, now: now, wantErr: ErrScheme},
		{name: "github value in standard header", id: vecID, ts: vecTS, sigs: "sha256=00", body: vecBody, now: now, wantErr: ErrScheme},
		{name: "missing signature", id: vecID, ts: vecTS, body: vecBody, now: now, wantErr: ErrMissing},
		{name: "missing id", ts: vecTS, sigs: vecSig, body: vecBody, now: now, wantErr: ErrMissing},
		{name: "missing timestamp", id: vecID, sigs: vecSig, body: vecBody, now: now, wantErr: ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyStandard(key, tt.id, tt.ts, tt.sigs, []byte(tt.body), tt.now)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("VerifyStandard got %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestVerifyGitHub(t *testing.T) {
	secret := []byte("It's a Secret to Everybody")
	body := []byte("Hello, World!")
	// The example from GitHub's "Validating webhook deliveries" page.
	const want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got := SignGitHub(secret, body); got != want {
		t.Fatalf("SignGitHub(GitHub's example) got %q, want %q", got, want)
	}
	tests := []struct {
		name    string
		header  string
		body    string
		wantErr error
	}{
		{name: "valid", header: want, body: string(body)},
		{name: "valid upper-case hex", header: "sha256=" + strings.ToUpper(want[7:]), body: string(body)},
		{name: "body changed", header: want, body: "Hello, World?", wantErr: ErrMismatch},
		{name: "bad hex", header: "sha256=" + strings.Repeat("zz", 32), body: string(body), wantErr: ErrMismatch},
		{name: "short", header: want[:20], body: string(body), wantErr: ErrMismatch},
		{name: "sha1 scheme", header: "sha1=2ef7bde608ce5404e97d5f042f95f89f1c232871", body: string(body), wantErr: ErrScheme},
		{name: "standard value in github header", header: vecSig, body: string(body), wantErr: ErrScheme},
		{name: "missing", body: string(body), wantErr: ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyGitHub(secret, tt.header, []byte(tt.body))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("VerifyGitHub got %v, want %v", err, tt.wantErr)
			}
		})
	}
}
