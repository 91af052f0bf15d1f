// SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/heraldgw/herald/pkg/herald"
	"github.com/heraldgw/herald/pkg/secret"
)

const sendUsage = `usage: herald send --platform NAME [--chat ID] [--thread ID] [--key KEY] [--wait D] [--json] [TEXT...]

Sends a message to a chat through the running herald's durable outbox and
prints its id and status. Without TEXT the message is read from standard
input. The message is split at the platform's limit like a reply, retried
by the delivery policy, and sent once per idempotency key: a script that
runs again with the same --key sends nothing twice.

flags:
  --platform NAME      the platform instance (a key under platforms:)
  --chat ID            the chat (default: the platform's home_chat)
  --thread ID          the thread or topic within the chat
  --key KEY            idempotency key (default: a random one)
` + clientFlags

const turnUsage = `usage: herald turn --platform NAME [--chat ID] [--user ID] [--chat-type T] [--key KEY] [--wait D] [--json] [TEXT...]

Runs an agent turn as if the user had written TEXT in the chat (read from
standard input without TEXT), under the platform's rules (allowed_users,
sessions, commands), and delivers the reply to the chat. Prints the turn's
id and status; the same --key runs the turn once.

flags:
  --platform NAME      the platform instance (a key under platforms:)
  --chat ID            the chat (default: the platform's home_chat)
  --chat-type T        dm (default), group or channel
  --thread ID          the thread or topic within the chat
  --user ID            the author (default: the chat, in a direct chat)
  --key KEY            idempotency key (default: a random one)
` + clientFlags

const clientFlags = `  --wait D             wait up to D for the delivery; exit 1 if it failed
                       or is still pending
  --json               print the answer as JSON
  --config FILE        find the admin socket from this configuration
  --admin-socket PATH  the admin socket (default: found as status does)
  --url URL            call api.listen at URL instead of the admin socket
  --token-file PATH    the bearer token for --url
  --timeout D          give up after D (default 1m)
`

// runSend is `herald send`.
func runSend(args []string, stdout, stderr io.Writer) int {
	var m herald.SendMessage
	return runClient("send", sendUsage, args, stdout, stderr,
		target{&m.Platform, &m.ChatID, &m.ThreadID, &m.IdempotencyKey, &m.Text}, nil,
		func(ctx context.Context, c *herald.SendClient) (herald.SendAccepted, error) { return c.Send(ctx, m) })
}

// runTurn is `herald turn`.
func runTurn(args []string, stdout, stderr io.Writer) int {
	var m herald.TurnMessage
	return runClient("turn", turnUsage, args, stdout, stderr,
		target{&m.Platform, &m.ChatID, &m.ThreadID, &m.IdempotencyKey, &m.Text},
		func(fs *flag.FlagSet) {
			fs.StringVar(&m.ChatType, "chat-type", "", "")
			fs.StringVar(&m.UserID, "user", "", "")
		},
		func(ctx context.Context, c *herald.SendClient) (herald.SendAccepted, error) { return c.Turn(ctx, m) })
}

// target are the fields send and turn share, filled from the command line.
type target struct {
	platform, chat, thread, key, text *string
}

// runClient is the common part of send and turn: flags, the text, the
// client, waiting and printing. own defines the command's other flags.
func runClient(name, usage string, args []string, stdout, stderr io.Writer, t target,
	own func(*flag.FlagSet), post func(context.Context, *herald.SendClient) (herald.SendAccepted, error)) int {
	fs := flag.NewFlagSet("herald "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	fs.StringVar(t.platform, "platform", "", "")
	fs.StringVar(t.chat, "chat", "", "")
	fs.StringVar(t.thread, "thread", "", "")
	fs.StringVar(t.key, "key", "", "")
	if own != nil {
		own(fs)
	}
	var cfg, socket, url, tokenFile string
	var wait, timeout time.Duration
	var asJSON bool
	fs.DurationVar(&wait, "wait", 0, "")
	fs.BoolVar(&asJSON, "json", false, "")
	fs.StringVar(&cfg, "config", "", "")
	fs.StringVar(&socket, "admin-socket", "", "")
	fs.StringVar(&url, "url", "", "")
	fs.StringVar(&tokenFile, "token-file", "", "")
	fs.DurationVar(&timeout, "timeout", time.Minute, "")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			fmt.Fprint(stdout, usage)
			return herald.ExitOK
		}
		fmt.Fprint(stderr, usage)
		return herald.ExitUsage
	}
	if *t.platform == "" {
		fmt.Fprintf(stderr, "herald %s: --platform is required\n\n%s", name, usage)
		return herald.ExitUsage
	}
	*t.text = strings.Join(fs.Args(), " ")
	if fs.NArg() == 0 {
		b, err := io.ReadAll(io.LimitReader(os.Stdin, 1<<20))
		if err != nil {
			fmt.Fprintf(stderr, "herald %s: read standard input: %v\n", name, err)
			return herald.ExitFailure
		}
		*t.text = string(b)
	}
	if *t.key == "" {
		var rnd [16]byte
		rand.Read(rnd[:])
		*t.key = "cli-" + hex.EncodeToString(rnd[:])
	}
	c := &herald.SendClient{URL: url, Socket: socket}
	switch {
	case url == "" && socket == "":
		c.Socket = herald.AdminSocket(cfg)
	case url != "" && tokenFile == "":
		fmt.Fprintf(stderr, "herald %s: --url needs --token-file\n", name)
		return herald.ExitUsage
	case url != "":
		tok, err := secret.Ref{File: tokenFile}.Read()
		if err != nil {
			fmt.Fprintf(stderr, "herald %s: %v\n", name, err)
			return herald.ExitConfig
		}
		c.Token = tok.Reveal()
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	acc, err := post(ctx, c)
	if err != nil {
		return report(fmt.Errorf("%s: %w", name, err), stderr)
	}
	var out any = acc
	line := fmt.Sprintf("%s %s\n", acc.ID, acc.Status)
	code := herald.ExitOK
	if wait > 0 {
		kind := map[string]string{"send": "messages", "turn": "turns"}[name]
		wctx, wcancel := context.WithTimeout(ctx, wait)
		defer wcancel()
		st, err := c.Wait(wctx, kind, acc.ID)
		if err != nil {
			return report(fmt.Errorf("%s: %w", name, err), stderr)
		}
		out = st
		line = fmt.Sprintf("%s %s\n", st.ID, st.Status)
		if st.Status == "failed" {
			line = fmt.Sprintf("%s failed after %d attempts: %s\n", st.ID, st.Attempts, st.Reason)
			code = herald.ExitFailure
		}
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
	} else {
		fmt.Fprint(stdout, line)
	}
	return code
}
