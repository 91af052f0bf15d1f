// SPDX-License-Identifier: Apache-2.0

package dingtalk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// stream holds the stream connection until ctx ends or the credentials are
// rejected.
func (a *Adapter) stream(ctx context.Context, inbox adapter.Inbox) {
	adapter.Reconnect{
		Life: a.life, Log: a.log, Metrics: a.metrics,
		Backoff: a.backoff,
	}.Run(ctx, func(ctx context.Context) adapter.Attempt { return a.session(ctx, inbox) })
}

// session opens one connection and serves it until it ends.
func (a *Adapter) session(ctx context.Context, inbox adapter.Inbox) adapter.Attempt {
	octx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
	ep, err := a.api.open(octx)
	cancel()
	if err != nil {
		return openFailure(fmt.Errorf("dingtalk: connections/open: %w", err))
	}
	u, err := streamURL(ep)
	if err != nil {
		return adapter.Attempt{Err: fmt.Errorf("dingtalk: connections/open: %w", err)}
	}
	dctx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
	conn, resp, err := websocket.Dial(dctx, u, &websocket.DialOptions{HTTPClient: a.api.http})
	cancel()
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return adapter.Attempt{Err: fmt.Errorf("dingtalk: stream dial: %w", err)}
	}
	defer conn.CloseNow()
	conn.SetReadLimit(maxFrame)

	cctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	a.life.Go(func() { a.keepalive(cctx, stop, conn) })
	a.life.Report(adapter.Status{Phase: adapter.PhaseConnected})
	a.log.Info("dingtalk: stream connected")

	err = a.serve(cctx, conn, inbox)
	if c := context.Cause(cctx); c != nil && ctx.Err() == nil {
		err = c
	}
	if errors.Is(err, errDisconnect) {
		a.closeGracefully(ctx, conn)
		a.log.Info("dingtalk: DingTalk asked to reconnect; stored frames acknowledged, opening a new connection")
		return adapter.Attempt{Err: err, Healthy: true, Immediate: true}
	}
	return adapter.Attempt{Err: err, Healthy: true}
}

// closeGracefully closes conn with a close handshake, so that the
// acknowledgements written last reach DingTalk before the socket goes,
// within request_timeout and never past ctx.
func (a *Adapter) closeGracefully(ctx context.Context, conn *websocket.Conn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = conn.Close(websocket.StatusNormalClosure, "reconnecting")
	}()
	t := time.NewTimer(a.conf.RequestTimeout)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-ctx.Done():
	case <-t.C:
	}
	conn.CloseNow()
	<-done
}

// openFailure classifies a failed connections/open: rejected credentials
// are fatal, a frequency limit waits as DingTalk asked.
func openFailure(err error) adapter.Attempt {
	var ae *apiError
	if errors.As(err, &ae) {
		switch {
		case ae.unauthorized() || ae.Status == 403 && !ae.limited():
			return adapter.Attempt{Err: fmt.Errorf("%w (%w: check client_id and client_secret)", err, adapter.ErrUnauthorized)}
		case ae.limited():
			return adapter.Attempt{Err: err, Delay: ae.RetryAfter}
		}
	}
	return adapter.Attempt{Err: err}
}

// streamURL is the endpoint with the ticket as its query parameter.
func streamURL(ep endpoint) (string, error) {
	u, err := url.Parse(ep.Endpoint)
	if err != nil || (u.Scheme != "wss" && u.Scheme != "ws") || u.Host == "" {
		return "", fmt.Errorf("endpoint %q is not a websocket URL", ep.Endpoint)
	}
	q := u.Query()
	q.Set("ticket", ep.Ticket)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// keepalive pings the stream every ping_interval; a ping without a pong
// within request_timeout (a blackholed socket) ends the connection.
func (a *Adapter) keepalive(ctx context.Context, stop context.CancelCauseFunc, conn *websocket.Conn) {
	for adapter.Sleep(ctx, a.conf.PingInterval) {
		pctx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
		err := conn.Ping(pctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			stop(fmt.Errorf("dingtalk: stream ping unanswered for %s: %w", a.conf.RequestTimeout, err))
			return
		}
	}
}

// serve reads frames one at a time, stores and acknowledges them, until
// the connection ends or a frame ends it (disconnect, a refused store).
func (a *Adapter) serve(ctx context.Context, conn *websocket.Conn, inbox adapter.Inbox) error {
	for {
		typ, b, err := conn.Read(ctx)
		if err != nil {
			return fmt.Errorf("dingtalk: stream read: %w", err)
		}
		if typ != websocket.MessageText {
			a.metrics.Rejected(reasonMalformed)
			a.log.Warn("dingtalk: binary stream frame ignored")
			continue
		}
		var f frame
		if err := json.Unmarshal(b, &f); err != nil {
			a.metrics.Rejected(reasonMalformed)
			a.log.WithError(err).Warn("dingtalk: unreadable stream frame ignored")
			continue
		}
		if err := a.handle(ctx, conn, inbox, &f); err != nil {
			return err
		}
	}
}

// handle answers one frame. A non-nil error ends the connection.
func (a *Adapter) handle(ctx context.Context, conn *websocket.Conn, inbox adapter.Inbox, f *frame) error {
	log := a.log.WithFields(logrus.Fields{"type": f.Type, "topic": f.topic(), "frame_id": f.messageID()})
	switch {
	case f.Type == typeSystem && f.topic() == topicPing:
		return a.ack(ctx, conn, newAck(f.messageID(), 200, "OK", f.Data))
	case f.Type == typeSystem && f.topic() == topicDisconnect:
		// Every frame read before this one is stored and acknowledged;
		// none after it is read.
		if err := a.ack(ctx, conn, newAck(f.messageID(), 200, "OK", "")); err != nil {
			log.WithError(err).Debug("dingtalk: disconnect not acknowledged")
		}
		return errDisconnect
	case f.Type == typeSystem:
		log.Debug("dingtalk: unknown system frame acknowledged")
		return a.ack(ctx, conn, newAck(f.messageID(), 200, "OK", ""))
	case f.Type == typeCallback && f.topic() == TopicBotMessage:
		return a.botMessage(ctx, conn, inbox, f, log)
	case f.Type == typeEvent:
		// herald subscribes to events only because DingTalk expects a
		// stream to; none becomes a message.
		a.metrics.Rejected(reasonTopic)
		log.Debug("dingtalk: event acknowledged and skipped")
		return a.ack(ctx, conn, newAck(f.messageID(), 200, "OK", ackEventData))
	default:
		a.metrics.Rejected(reasonTopic)
		log.Warn("dingtalk: frame of an unsubscribed type or topic answered 404")
		return a.ack(ctx, conn, newAck(f.messageID(), 404, "handler not found", ""))
	}
}

// botMessage stores a bot message and acknowledges it once stored, or once
// it is clear it can never be stored.
func (a *Adapter) botMessage(ctx context.Context, conn *websocket.Conn, inbox adapter.Inbox, f *frame, log *logrus.Entry) error {
	msg, err := inbound(a.name, f.Data, a.now())
	var rj *rejectError
	switch {
	case errors.As(err, &rj):
		a.metrics.Rejected(rj.reason)
		level := logrus.WarnLevel
		if rj.reason == reasonEmpty {
			level = logrus.InfoLevel
		}
		log.WithError(err).Logf(level, "dingtalk: bot message skipped (%s)", rj.reason)
	case err != nil:
		return err
	default:
		log = log.WithField("msg_id", msg.EventID)
		log.Debug("dingtalk: bot message received; storing it")
		switch err := inbox.Deliver(ctx, msg); {
		case err == nil:
		case errors.Is(err, message.ErrInvalid):
			a.metrics.Rejected(reasonInvalid)
			log.WithError(err).Warn("dingtalk: bot message refused by the store; acknowledged so DingTalk stops sending it")
		default:
			// Not stored, so not acknowledged: DingTalk sends it again.
			if errors.Is(err, adapter.ErrStopping) {
				log.Info("dingtalk: herald is stopping; bot message left unacknowledged for redelivery")
			}
			return fmt.Errorf("dingtalk: storing bot message %s: %w", msg.EventID, err)
		}
	}
	return a.ack(ctx, conn, newAck(f.messageID(), 200, "OK", ackCallbackData))
}

// ack writes one acknowledgement, bounded by request_timeout.
func (a *Adapter) ack(ctx context.Context, conn *websocket.Conn, ack ackFrame) error {
	if strings.TrimSpace(ack.Headers["messageId"]) == "" {
		a.metrics.Rejected(reasonMalformed)
		a.log.Warn("dingtalk: frame without messageId cannot be acknowledged")
		return nil
	}
	b, err := json.Marshal(ack)
	if err != nil {
		return fmt.Errorf("dingtalk: encode ack: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
	defer cancel()
	if err := conn.Write(wctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("dingtalk: write ack: %w", err)
	}
	return nil
}
