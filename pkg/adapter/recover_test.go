// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/message"
)

func TestRecoverByPolicy(t *testing.T) {
	l := logrus.New()
	l.SetOutput(io.Discard)
	log := logrus.NewEntry(l)
	msg := &message.Outbound{ChatID: "1", Text: "answer", IdempotencyKey: "k"}
	var got []*message.Outbound
	sendWith := func(err error) func(context.Context, *message.Outbound) (SendResult, error) {
		return func(_ context.Context, m *message.Outbound) (SendResult, error) {
			got = append(got, m)
			return SendResult{MessageID: "9"}, err
		}
	}

	got = nil
	res, err := RecoverByPolicy(context.Background(), ResendMarked, "x: send", msg, time.Now(), log, sendWith(nil))
	if err != nil || res.MessageID != "9" || len(got) != 1 || got[0].Text != RecoveredMark+"\nanswer" || got[0].IdempotencyKey != "k/recovered" {
		t.Fatalf("resend_marked: %v %+v %+v", err, res, got)
	}
	if msg.Text != "answer" {
		t.Error("the original message was changed")
	}

	got = nil
	_, err = RecoverByPolicy(context.Background(), ResendMarked, "x: send", msg, time.Now(), log, sendWith(fmt.Errorf("%w: cut", ErrAmbiguous)))
	if !errors.Is(err, ErrNotResent) || Retryable(err) {
		t.Fatalf("an ambiguous marked resend: %v, want ErrNotResent", err)
	}

	got = nil
	_, err = RecoverByPolicy(context.Background(), ResendMarked, "x: send", msg, time.Now(), log, sendWith(fmt.Errorf("%w: down", ErrTemporary)))
	if !errors.Is(err, ErrTemporary) || !Retryable(err) {
		t.Fatalf("a failed marked resend: %v, want it retryable", err)
	}

	got = nil
	_, err = RecoverByPolicy(context.Background(), AtMostOnce, "x: send", msg, time.Now(), log, sendWith(nil))
	if !errors.Is(err, ErrNotResent) || !strings.Contains(err.Error(), AtMostOnce) || len(got) != 0 {
		t.Fatalf("at_most_once: %v, %d sends", err, len(got))
	}
}
