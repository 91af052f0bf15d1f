// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/store"
)

// DM pairing (dm_policy: pairing): a user the platform does not allow who
// writes a direct message gets a one-time code instead of an answer; the
// message is not passed to the agent. Once the operator approves the code
// (herald pairing approve), the user may talk to the agent like an
// allowlisted one, across restarts and reloads, until revoked.

const (
	// PairingCodeLen is the length of a pairing code.
	PairingCodeLen = 8
	// PairingTTL is how long a code can be approved.
	PairingTTL = time.Hour
	// MaxPendingPairings bounds the codes pending at once per platform.
	MaxPendingPairings = 3
	// pairingAlphabet has no characters that read alike (0 O, 1 I L).
	pairingAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
	// PairingApprovedText tells an approved user they can go ahead.
	PairingApprovedText = "You can talk to the agent now."
)

// NewPairingCode returns a random code of PairingCodeLen characters of
// pairingAlphabet.
func NewPairingCode() string {
	b := make([]byte, PairingCodeLen)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(pairingAlphabet))))
		if err != nil {
			panic(fmt.Sprintf("dispatch: crypto/rand failed: %v", err))
		}
		b[i] = pairingAlphabet[n.Int64()]
	}
	return string(b)
}

// mayTalk reports whether user may talk to the agent on platform p:
// everyone under dm_policy open, else allowed_users and approved pairings.
func (d *Dispatcher) mayTalk(p *platform, name, user string) bool {
	if p.Policy.AllowAll || p.allowed[user] {
		return true
	}
	d.mu.Lock()
	ok, stale := d.paired[name][user], d.clustered() && time.Since(d.pairedAt) > pairedStale
	if !ok && stale {
		// This caller reads them again; the others meanwhile use the cache.
		d.pairedAt = time.Now()
	}
	d.mu.Unlock()
	if ok || !stale {
		return ok
	}
	// Cluster mode: another node may have paired the sender.
	d.reloadPaired()
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.paired[name][user]
}

func (d *Dispatcher) loadPaired(ctx context.Context) (map[string]map[string]bool, error) {
	_, users, err := d.store.Pairings(ctx)
	if err != nil {
		return nil, fmt.Errorf("dispatch: read pairings: %w", err)
	}
	paired := map[string]map[string]bool{}
	for _, u := range users {
		if paired[u.Platform] == nil {
			paired[u.Platform] = map[string]bool{}
		}
		paired[u.Platform][u.UserID] = true
	}
	return paired, nil
}

// pairingReply gives the sender of m a pairing code (the pending one if
// there is one) and returns the text that tells them.
func (d *Dispatcher) pairingReply(m *message.Inbound) string {
	ctx, cancel := context.WithTimeout(d.ctx, 30*time.Second)
	defer cancel()
	code, created, err := d.store.RequestPairing(ctx, store.PairingRequest{
		Platform: m.Platform, UserID: m.SenderID, UserName: m.SenderName, ChatID: m.ChatID,
	}, PairingTTL, MaxPendingPairings, NewPairingCode)
	log := d.log.WithFields(logrus.Fields{"platform": m.Platform, "sender": m.SenderID, "chat": m.ChatID})
	switch {
	case errors.Is(err, store.ErrPairingFull):
		log.Warnf("pairing request of user %q refused: %d codes are pending on %s already (herald pairing list)", m.SenderID, MaxPendingPairings, m.Platform)
		return "Too many access requests are waiting right now. Please try again later."
	case err != nil:
		log.WithError(err).Error("cannot record a pairing request")
		return "Your access request could not be recorded. Please try again later."
	case created:
		log.Infof("user %q asked for access on %s with a pairing code; `herald pairing list` shows it", m.SenderID, m.Platform)
	}
	return fmt.Sprintf("You are not allowed to talk to the agent yet. Ask the operator to approve your code %s (valid for an hour):\n\nherald pairing approve %s %s", code, m.Platform, code)
}

// ApprovePairing approves code on platform. With notify the user is told,
// through the outbox, that they can talk to the agent now. It returns the
// approved request; store.ErrNoPairingCode when no pending code matches.
func (d *Dispatcher) ApprovePairing(ctx context.Context, platform, code string, notify bool) (store.PairingRequest, error) {
	d.mu.Lock()
	known := d.platforms[platform] != nil
	d.mu.Unlock()
	if !known {
		return store.PairingRequest{}, &FieldError{"platform", fmt.Sprintf("no platform %q is configured", platform)}
	}
	code = strings.ToUpper(strings.TrimSpace(code))
	req, err := d.store.ApprovePairing(ctx, platform, code)
	if err != nil {
		return req, fmt.Errorf("dispatch: approve pairing: %w", err)
	}
	d.mu.Lock()
	if d.paired[platform] == nil {
		d.paired[platform] = map[string]bool{}
	}
	d.paired[platform][req.UserID] = true
	d.mu.Unlock()
	if notify {
		if _, _, err := d.Send(ctx, SendRequest{
			Platform: platform, ChatID: req.ChatID, Text: PairingApprovedText,
			IdempotencyKey: "pairing-approved\x00" + platform + "\x00" + req.UserID + "\x00" + code,
		}); err != nil {
			return req, fmt.Errorf("dispatch: approved, but cannot tell the user: %w", err)
		}
	}
	return req, nil
}

// RevokePairing withdraws the approval of user on platform; their next
// message is refused (or gets a new code). It reports whether the user was
// approved.
func (d *Dispatcher) RevokePairing(ctx context.Context, platform, user string) (bool, error) {
	found, err := d.store.RevokePairing(ctx, platform, user)
	if err != nil {
		return false, fmt.Errorf("dispatch: revoke pairing: %w", err)
	}
	d.mu.Lock()
	delete(d.paired[platform], user)
	d.mu.Unlock()
	return found, nil
}
