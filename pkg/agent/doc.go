// SPDX-License-Identifier: Apache-2.0

// Package agent talks to the AI agent backend that answers chat messages:
// any OpenAI-compatible /v1/chat/completions server (kind openai), the Hermes
// Agent API server (kind hermes, which keeps the conversation history itself,
// keyed by X-Hermes-Session-Id, and runs a turn as a durable run of its Runs
// API when it has one), or the built-in echo agent (kind echo, no network)
// used by the default configuration and by demos.
//
// The client is plain net/http plus a small server-sent-events reader of its
// own: herald must survive keepalive comments during long tool runs, key on
// Hermes event names, and stop a turn at once when its context ends, which
// the common Go client libraries do not all do (go-openai gives up after 300
// non-data lines; openai-go pulls in a large dependency tree).
//
// # Timeouts
//
// agent.connect_timeout bounds dialing and the wait for response headers (so
// a server that ignores "stream": true must answer within it);
// first_token_timeout bounds the wait for the first reply text, idle_timeout
// the silence between any two bytes of the stream (keepalive comments count),
// and total_timeout the whole turn, retries included. A fired timeout
// cancels the request and is reported as a *TimeoutError.
//
// # Errors
//
// Complete's errors start with "agent: " and match one of the sentinels with
// errors.Is, so the dispatcher can decide what to tell the user and whether
// the turn may run again later:
//
//   - context.Canceled / context.DeadlineExceeded: the caller's ctx ended
//     (/stop, interrupt, shutdown). Nothing is retried.
//   - ErrTimeout: a first-token, idle or total timeout fired (*TimeoutError
//     says which).
//   - ErrRateLimited: HTTP 429 on every attempt (*HTTPError carries
//     Retry-After).
//   - ErrUnavailable: 5xx or 408 on every attempt, a connection failure, or a
//     stream that broke off or reported an error after the backend accepted
//     the turn.
//   - ErrRejected: another 4xx or 3xx (bad key, bad request, idempotency
//     conflict, wrong URL) or a request this package refuses to send. Running
//     the turn again will not help.
//   - ErrProtocol: the answer could not be understood (not JSON or an event
//     stream, malformed chunk, line or reply too large).
//
// # Retries
//
// A request is retried, with the same Idempotency-Key, only while the
// backend has not accepted the turn: connection errors, 429, 408 and 5xx,
// up to agent.max_attempts, with jittered exponential backoff or the
// server's Retry-After. Once a 2xx response arrived the backend may be running
// tools with side effects, so a failure after that is returned as is and the
// caller decides whether to run the whole turn again.
//
// # Kind hermes: the Runs API
//
// A chat completions turn lives as long as its HTTP stream: Hermes
// interrupts the agent when the client goes away, so a herald restart in the
// middle of a turn cuts it and the next instance runs it again (Hermes keeps
// the chat completions Idempotency-Key in memory only, for five minutes).
// With the Runs API a turn is a run that executes on its own; herald detaches
// at stop and re-attaches at start. What the Hermes API server does, as read
// in its documentation (website/docs/user-guide/features/api-server.md) and
// implementation (gateway/platforms/api_server_runs.py and
// api_server_run_idempotency.py of NousResearch/hermes-agent):
//
//   - GET /v1/capabilities answers {"object":"hermes.api_server.capabilities",
//     "features":{…}} with boolean features, among them run_submission,
//     run_status, run_events_sse and run_stop (and run_approval where
//     approvals can be answered), and "session_key_header":
//     "X-Hermes-Session-Key". Older servers answer 404.
//   - POST /v1/runs takes {"input", "session_id", "instructions",
//     "conversation_history", "previous_response_id", "model", …} and
//     answers 202 {"run_id":"run_…","status":"started","replayed":false}.
//     The session is the body's session_id (X-Hermes-Session-Id is not
//     read there); without one it is the run id. "input" must be a
//     non-empty string (or a message list). A "model" in a run's body is
//     always honoured, so herald sends none unless agent.model was changed
//     from hermes-agent.
//   - Idempotency-Key (1 to 255 visible ASCII characters, else 400
//     invalid_idempotency_key) is reserved durably (SQLite) before the run
//     starts, scoped to the API key, with a fingerprint of the body and the
//     X-Hermes-Session-Key. The same key and body answer 202 with the
//     original run_id, "replayed":true and Idempotency-Replayed: true, also
//     after a Hermes restart and after the run ended; the same key with
//     another body answers 409 idempotency_key_conflict. Records are kept
//     24 hours after their last status update, and only terminal ones are
//     pruned. Without the header every POST creates a run.
//   - GET /v1/runs/{id} answers {"object":"hermes.run","run_id","status",
//     "session_id","model","output","usage","error","last_event",…}.
//     Statuses: queued, running, waiting_for_approval (with an "approval"
//     object), stopping, and the terminal completed, failed, cancelled and
//     interrupted. The status of a keyed run is kept with its idempotency
//     record, so it outlives a Hermes restart; a run that had not settled
//     when Hermes died reads as interrupted ("The gateway restarted before
//     this run settled.") and its key replays that interrupted run. An
//     unknown run (or another API key's) is 404 run_not_found.
//   - GET /v1/runs/{id}/events is a text/event-stream of JSON objects that
//     all carry "event", "run_id" and "timestamp": message.delta {"delta"},
//     tool.started {"tool","preview"}, tool.completed {"tool","duration",
//     "error"}, reasoning.available {"text"}, subagent.start and
//     subagent.complete, approval.request (the tool's "command",
//     "description", "pattern_key", a "request_id" and "choices"),
//     approval.responded {"choice","resolved"}, and one terminal event:
//     run.completed {"output","usage"}, run.failed {"error"},
//     run.cancelled or run.interrupted. A ": keepalive" comment comes every
//     30 seconds and ": stream closed" at the end.
//   - The event buffer is transport state, not the run. In the versions
//     read, the buffer is dropped as soon as its subscriber disconnects, so
//     a second GET of the events answers 404; an unconsumed buffer expires
//     five minutes after it was created (unless a subscriber is
//     connected), and the run keeps executing either way. A server that
//     numbers its events ("id:" lines) lets a subscriber resume after
//     Last-Event-ID instead. herald handles both without asking: it sends
//     Last-Event-ID when the stream gave ids, and on a 404 or a stream it
//     cannot resume it polls GET /v1/runs/{id} (every two seconds) until
//     the run ends. The reply is always the run's "output", never only the
//     deltas herald happened to see.
//   - POST /v1/runs/{id}/stop answers {"status":"stopping"} at once; the
//     run settles as cancelled when its worker exits. A terminal run
//     answers its status; a run not executing in this Hermes process is
//     409 run_not_active.
//   - POST /v1/runs/{id}/approval takes {"choice", "request_id"?, "all"?}:
//     choice once, session, always or deny (approve, approved and allow
//     mean once); another is 400 invalid_approval_choice, and answering
//     when nothing is pending is 409 approval_not_pending.
//   - X-Hermes-Session-Key, on chat completions and runs, is a stable
//     memory scope that does not change with the transcript (at most 256
//     characters; CR, LF and NUL are rejected). herald sends the
//     conversation key (platform, chat and, in group sessions, user),
//     which /new does not change (MemoryScope).
//
// agent.hermes_api chooses: auto (default) asks /v1/capabilities at the first
// turn and uses runs when run_submission, run_status, run_events_sse and
// run_stop are all offered, else falls back to chat completions with one
// warning naming what is missing (Mode reports it for herald status);
// runs or chat_completions force a mode.
//
// A run's turn is identified by Request.IdempotencyKey (derived from the
// inbound message). Events.RunStarted reports the run id and the exact body
// as soon as the backend accepted it, and the caller stores them; after a
// restart Request.Run brings them back and the turn re-attaches:
//
//   - completed: its output is the reply;
//   - queued, running, waiting for approval: follow its events, or poll
//     when the buffer is gone;
//   - unknown (404): POST the stored body again under the same key, which
//     finds the original run while Hermes still has the key;
//   - failed, cancelled, interrupted: a *RunError (unwrapping to
//     ErrRejected), so the user is told and the turn is not run again
//     under this key (the dispatcher may run an interrupted turn once more
//     under a new key, if agent.rerun_interrupted says so).
//
// When the caller's context ends the turn detaches: the run goes on. Only the
// cause ErrStopRequested (the user's /stop, or the interrupt busy policy)
// POSTs …/stop; so does the total timeout, which fails the turn. The
// first-token timeout does not apply to runs (the run executes whether or
// not herald listens); the idle timeout and 30 s without an event make
// herald check the run's status (and poll it if the stream is gone), never
// fail the turn.
//
// Run approvals: Events.Approval hears of each request (tool, command,
// request_id, choices), from the approval.request event or, after a
// re-attach, from the status "approval"; the caller answers with
// Approve(run, request_id, choice). Without it herald answers deny.
//
// A turn runs twice only when Hermes no longer knows its key when herald
// comes back: the key was pruned (more than 24 hours after the run's last
// status update, a run that ended), or Hermes lost its idempotency database,
// or Hermes could not keep it durably (it then falls back to memory and
// logs so). herald creates the run again under the same key and body; every
// other path finds the original run. If herald died after Hermes accepted
// the run but before the run id was stored, the next instance POSTs the
// same key and body again and gets the original run; if the body changed
// meanwhile (agent.model was edited), Hermes answers 409 and the user is
// told that the agent could not answer, while the original run finishes
// unheard.
package agent
