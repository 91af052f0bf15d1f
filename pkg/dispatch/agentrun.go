// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/agent"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/store"
)

// rejectedText is what the user is told when the agent rejected a turn: a
// backend run that ended without a reply says how it ended.
func rejectedText(err error) string {
	var re *agent.RunError
	if errors.As(err, &re) {
		switch re.Status {
		case "interrupted":
			return "Sorry, the agent was restarted while it worked on this message and did not finish. Please send it again."
		case "cancelled":
			return "The agent's work on this message was stopped."
		}
	}
	return "Sorry, the agent could not answer this message."
}

// AgentMode reports how the current agent runs turns (agent.ModeRuns or
// agent.ModeChatCompletions for kind hermes once it asked the backend, ""
// otherwise) and why, for herald status.
func (d *Dispatcher) AgentMode() (mode, note string) {
	d.mu.Lock()
	ag := d.agent
	d.mu.Unlock()
	if m, ok := ag.(interface{ Mode() (string, string) }); ok {
		return m.Mode()
	}
	return "", ""
}

// approver is an agent that can answer a run's approval request (kind
// hermes).
type approver interface {
	Approve(ctx context.Context, runID, requestID, choice string) error
}

// pendingApproval is a run waiting for the user's decision.
type pendingApproval struct {
	itemID int64
	a      agent.Approval
	timer  *time.Timer
}

// onApproval is the turn's Events.Approval: a run of the turn of it waits
// for a decision (or one was recorded). It records the request durably,
// posts the prompt in the conversation (once: the prompt's idempotency key
// derives from the request) and arms the agent.approval_timeout deadline,
// counted from when the request was first seen, across restarts.
func (d *Dispatcher) onApproval(it *item, a agent.Approval) {
	log := d.log.WithFields(logrus.Fields{"session": it.key, "message": it.id, "run": a.RunID, "request_id": a.RequestID})
	ctx, cancel := context.WithTimeout(d.bg(), 10*time.Second)
	defer cancel()
	if a.Resolved {
		d.mu.Lock()
		d.forgetApprovalLocked(it.key, it.id, a.RequestID)
		d.mu.Unlock()
		if err := d.store.DeleteApproval(ctx, it.id, a.RequestID); err != nil {
			log.WithError(err).Warn("cannot forget the answered approval")
		}
		return
	}
	asked, err := d.store.SetApproval(ctx, store.PendingApproval{InboundID: it.id, SessionKey: it.key, RunID: a.RunID, RequestID: a.RequestID, AskedAt: time.Now()})
	if err != nil {
		log.WithError(err).Error("cannot record the approval request; asking anyway")
		asked = time.Now()
	}
	var buttons []message.Button
	if d.showsButtons(it.msg.Platform) {
		buttons = d.approvalButtons(it.key, a.RequestID)
	}
	d.noticeButtons(it, "approval:"+a.RunID+":"+a.RequestID, approvalPrompt(a, d.opts.ApprovalTimeout), buttons)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.approvalsClosed {
		return
	}
	if d.approvals == nil {
		d.approvals = map[string]*pendingApproval{}
	}
	if old := d.approvals[it.key]; old != nil {
		old.timer.Stop()
	}
	p := &pendingApproval{itemID: it.id, a: a}
	p.timer = time.AfterFunc(max(time.Until(asked.Add(d.opts.ApprovalTimeout)), 0), func() { d.approvalExpired(it, p) })
	d.approvals[it.key] = p
	log.Info("asked the user to approve the run's tool call")
}

func approvalPrompt(a agent.Approval, timeout time.Duration) string {
	var b strings.Builder
	b.WriteString("The agent asks to run")
	if a.Tool != "" {
		fmt.Fprintf(&b, " %s:", a.Tool)
	}
	if a.Command != "" {
		fmt.Fprintf(&b, "\n%s", a.Command)
	}
	if a.Description != "" {
		fmt.Fprintf(&b, "\n(%s)", a.Description)
	}
	fmt.Fprintf(&b, "\nReply /approve to allow it once or /deny to refuse. Without an answer within %s it is denied.", timeout)
	return b.String()
}

// approvalExpired denies a request nobody answered in time and tells the
// user.
func (d *Dispatcher) approvalExpired(it *item, p *pendingApproval) {
	d.mu.Lock()
	if d.approvalsClosed || d.approvals[it.key] != p {
		d.mu.Unlock()
		return
	}
	delete(d.approvals, it.key)
	ag, _ := d.agent.(approver)
	d.wg.Add(1)
	d.mu.Unlock()
	defer d.wg.Done()
	log := d.log.WithFields(logrus.Fields{"session": it.key, "run": p.a.RunID, "request_id": p.a.RequestID})
	ctx, cancel := context.WithTimeout(d.bg(), 30*time.Second)
	defer cancel()
	if ag != nil {
		if err := ag.Approve(ctx, p.a.RunID, p.a.RequestID, "deny"); err != nil && !notPending(err) {
			log.WithError(err).Warn("cannot deny the unanswered approval request")
		}
	}
	if err := d.store.DeleteApproval(ctx, it.id, p.a.RequestID); err != nil {
		log.WithError(err).Warn("cannot forget the unanswered approval")
	}
	log.Info("approval request unanswered in time; denied")
	d.notice(it, "approval-expired:"+p.a.RunID+":"+p.a.RequestID, fmt.Sprintf("No answer within %s: the request was denied.", d.opts.ApprovalTimeout))
}

// answerApproval answers the session's pending approval with /approve or
// /deny (typed, or a pressed button) and returns the reply to the command.
// One answer at a time per session: a second one waits for the first to
// settle and then finds nothing pending.
func (d *Dispatcher) answerApproval(it *item, cmd string) string {
	log := d.log.WithFields(logrus.Fields{"session": it.key, "sender": it.msg.SenderID})
	d.mu.Lock()
	if d.answering[it.key] {
		d.mu.Unlock()
		log.Info("an answer to the approval request is already being passed on; this one is not")
		return "Nothing to " + cmd + ": the request is already being answered."
	}
	if d.answering == nil {
		d.answering = map[string]bool{}
	}
	d.answering[it.key] = true
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		delete(d.answering, it.key)
		d.mu.Unlock()
	}()
	return d.answerApprovalOnce(it, cmd, log)
}

func (d *Dispatcher) answerApprovalOnce(it *item, cmd string, log *logrus.Entry) string {
	choice, done := "once", "Approved."
	if cmd == CmdDeny {
		choice, done = "deny", "Denied."
	}
	ctx, cancel := context.WithTimeout(d.bg(), 30*time.Second)
	defer cancel()
	d.mu.Lock()
	ag, ok := d.agent.(approver)
	var pa store.PendingApproval
	found := false
	if p := d.approvals[it.key]; p != nil {
		pa, found = store.PendingApproval{InboundID: p.itemID, RunID: p.a.RunID, RequestID: p.a.RequestID}, true
	}
	d.mu.Unlock()
	if !found {
		// Not reported by the run yet in this instance (just restarted).
		var err error
		if pa, found, err = d.store.Approval(ctx, it.key); err != nil {
			log.WithError(err).Error("cannot read the pending approval")
			return "Sorry, the answer could not be passed to the agent."
		}
	}
	if !found || !ok {
		return "Nothing to " + cmd + "."
	}
	if it.msg.Button != "" && !d.validButton(it.msg.Button, it.key, pa.RequestID, cmd) {
		// A button of an earlier request, of another conversation, or
		// forged: never taken as an answer to the one pending now.
		log.WithField("request_id", pa.RequestID).Warn("refused a pressed button that does not belong to the pending approval request")
		return "This button does not answer the pending request. Reply /approve or /deny."
	}
	log = log.WithFields(logrus.Fields{"run": pa.RunID, "request_id": pa.RequestID, "choice": choice})
	err := ag.Approve(ctx, pa.RunID, pa.RequestID, choice)
	switch {
	case err == nil:
		log.Info("the user answered the run's approval request")
	case notPending(err):
		log.WithError(err).Info("the approval request is no longer pending")
		done = "Nothing to " + cmd + ": the request is no longer pending."
	default:
		log.WithError(err).Warn("cannot pass the approval answer to the agent")
		return "Sorry, the answer could not be passed to the agent. Please try again."
	}
	d.mu.Lock()
	d.forgetApprovalLocked(it.key, pa.InboundID, pa.RequestID)
	d.mu.Unlock()
	if err := d.store.DeleteApproval(ctx, pa.InboundID, pa.RequestID); err != nil {
		log.WithError(err).Warn("cannot forget the answered approval")
	}
	return done
}

// notPending: the backend has no such pending approval (409).
func notPending(err error) bool {
	var he *agent.HTTPError
	return errors.As(err, &he) && (he.Status == 409 || he.Status == 404)
}

// forgetApprovalLocked drops the session's pending approval if it belongs
// to message id and (unless "") request requestID.
func (d *Dispatcher) forgetApprovalLocked(key string, id int64, requestID string) {
	if p := d.approvals[key]; p != nil && p.itemID == id && (requestID == "" || p.a.RequestID == requestID) {
		p.timer.Stop()
		delete(d.approvals, key)
	}
}

// closeApprovalsLocked stops every approval deadline (Close); the requests
// stay recorded for the next instance.
func (d *Dispatcher) closeApprovalsLocked() {
	d.approvalsClosed = true
	for k, p := range d.approvals {
		p.timer.Stop()
		delete(d.approvals, k)
	}
}

// notice queues a message to the conversation of it outside its turn's
// reply, under an idempotency key derived from the message and what, so
// the same notice is queued once even if asked for again after a restart.
func (d *Dispatcher) notice(it *item, what, text string) {
	d.noticeButtons(it, what, text, nil)
}

// noticeButtons is notice with native buttons under the text.
func (d *Dispatcher) noticeButtons(it *item, what, text string, buttons []message.Button) {
	d.mu.Lock()
	gen := d.gens[it.key]
	d.mu.Unlock()
	o := it.msg.ReplyTo()
	o.Text = text
	o.Buttons = buttons
	o.IdempotencyKey = message.IdempotencyKey(it.msg.Platform, it.msg.EventID+"\x00"+what, 0)
	ctx, cancel := context.WithTimeout(d.bg(), 30*time.Second)
	defer cancel()
	recs, err := d.store.Finish(ctx, 0, store.Done, it.key, gen, []message.Outbound{o}, nil)
	if err != nil {
		d.log.WithError(err).WithField("message", it.id).Error("cannot queue a notice")
		return
	}
	d.queueDeliveries(it.key, it.part, recs)
}

// maxReruns bounds the runs of one turn started again because the backend
// restarted during them (agent.rerun_interrupted).
const maxReruns = 1

// runKey is the idempotency key of attempt n of the turn for m: attempt 0
// is the message's own key, a re-run's key adds "-r" and n, so it is
// derived again identically by the next instance.
func runKey(m message.Inbound, n int) string {
	k := message.IdempotencyKey(m.Platform, m.EventID, 0)
	if n > 0 {
		k += fmt.Sprintf("-r%d", n)
	}
	return k
}

// interrupted reports whether err is a run the backend interrupted (it
// restarted while the run executed).
func interrupted(err error) bool {
	var re *agent.RunError
	return errors.As(err, &re) && re.Status == "interrupted"
}
