// SPDX-License-Identifier: Apache-2.0

package mattermost

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/secret"
)

// maxBody bounds a REST answer read into memory.
const maxBody = 8 << 20

// unixTimeFloor: a rate-limit value above it (September 2001 in Unix
// seconds) is a point in time, not a number of seconds to wait.
const unixTimeFloor = 1e9

// minRateWait is the shortest wait after a 429 without a usable hint.
const minRateWait = time.Second

// client is the REST API v4 client.
type client struct {
	base    string
	token   secret.Value
	timeout time.Duration
	http    *http.Client
	log     *logrus.Entry
	// date is the server's clock (Unix seconds) from the Date header of
	// the latest answer, 0 before the first.
	date atomic.Int64
}

func newClient(base string, token secret.Value, timeout time.Duration, log *logrus.Entry) *client {
	return &client{
		base:    base,
		token:   token,
		timeout: timeout,
		http:    &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		log:     log,
	}
}

func (c *client) close() { c.http.CloseIdleConnections() }

// user is the part of a Mattermost user herald reads.
type user struct {
	ID       string `json:"id"`
	Username string `json:"username"`
}

type team struct {
	ID string `json:"id"`
}

type channel struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

// post is the part of a Mattermost post herald reads and writes.
type post struct {
	ID            string         `json:"id,omitempty"`
	CreateAt      int64          `json:"create_at,omitempty"`
	DeleteAt      int64          `json:"delete_at,omitempty"`
	UserID        string         `json:"user_id,omitempty"`
	ChannelID     string         `json:"channel_id"`
	RootID        string         `json:"root_id,omitempty"`
	Message       string         `json:"message"`
	Type          string         `json:"type,omitempty"`
	Props         map[string]any `json:"props,omitempty"`
	PendingPostID string         `json:"pending_post_id,omitempty"`
	FileIDs       []string       `json:"file_ids,omitempty"`
	Metadata      *postMetadata  `json:"metadata,omitempty"`
}

// postList is the answer of the channel posts endpoints.
type postList struct {
	Order []string         `json:"order"`
	Posts map[string]*post `json:"posts"`
}

// apiError is Mattermost's error body.
type apiError struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}

// do calls method path with body (JSON) and decodes the answer into out.
// Every failure is classified with the adapter sentinels; a failure after
// a POST was written is ErrAmbiguous.
func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s %s: %w: %w", method, path, adapter.ErrPermanent, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w: %w", method, path, adapter.ErrPermanent, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token.Reveal())
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if method != http.MethodGet {
			return fmt.Errorf("%s %s: %w: %w", method, path, adapter.ErrAmbiguous, err)
		}
		return fmt.Errorf("%s %s: %w: %w", method, path, adapter.ErrTemporary, err)
	}
	defer resp.Body.Close()
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		c.date.Store(d.Unix())
	}
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode/100 == 2 {
		if rerr != nil {
			sentinel := adapter.ErrTemporary
			if method != http.MethodGet {
				sentinel = adapter.ErrAmbiguous
			}
			return fmt.Errorf("%s %s: %w: reading the answer: %w", method, path, sentinel, rerr)
		}
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				return fmt.Errorf("%s %s: %w: malformed answer: %w", method, path, adapter.ErrTemporary, err)
			}
		}
		return nil
	}
	return c.statusError(method, path, resp, b)
}

// statusError classifies a non-2xx answer.
func (c *client) statusError(method, path string, resp *http.Response, body []byte) error {
	var ae apiError
	_ = json.Unmarshal(body, &ae)
	desc := fmt.Sprintf("%s %s: HTTP %d", method, path, resp.StatusCode)
	if ae.ID != "" || ae.Message != "" {
		desc += fmt.Sprintf(" %s: %s", ae.ID, ae.Message)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("%w: %s", adapter.ErrUnauthorized, desc)
	case resp.StatusCode == http.StatusTooManyRequests:
		return &adapter.RetryAfterError{After: c.rateWait(resp.Header, method+" "+path), Err: fmt.Errorf("%w: %s", adapter.ErrRateLimited, desc)}
	case resp.StatusCode == http.StatusRequestEntityTooLarge:
		return fmt.Errorf("%w: %w: %s", adapter.ErrPermanent, adapter.ErrTooLarge, desc)
	case resp.StatusCode == http.StatusNotImplemented:
		// A feature the server has off (file storage): not for now.
		return fmt.Errorf("%w: %s", adapter.ErrPermanent, desc)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		return fmt.Errorf("%w: %s", adapter.ErrTemporary, desc)
	default:
		return fmt.Errorf("%w: %s", adapter.ErrPermanent, desc)
	}
}

// rateWait reads the wait a 429 asks for: Retry-After (seconds), else
// X-Ratelimit-Reset (seconds until the window resets; a Unix time, as some
// proxies send, is taken as one), clamped to [1s, adapter.MaxRetryAfter].
func (c *client) rateWait(h http.Header, what string) time.Duration {
	for _, name := range []string{"Retry-After", "X-Ratelimit-Reset"} {
		v := strings.TrimSpace(h.Get(name))
		if v == "" {
			continue
		}
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			c.log.WithField("header", name).Warnf("mattermost: %s: unreadable %s %q; waiting %v", what, name, v, minRateWait)
			return minRateWait
		}
		if n > unixTimeFloor {
			// A proxy's reset given as a Unix time, not a delay.
			n -= float64(time.Now().Unix())
		}
		d, clamped := adapter.BoundWait(n, time.Second, minRateWait, adapter.MaxRetryAfter)
		if clamped {
			adapter.LogClamp(c.log, name+" of "+what, v, d)
		}
		return d
	}
	return minRateWait
}

// serverTime returns the server's clock as of the latest answer (to the
// second, rounded down), the zero time before any.
func (c *client) serverTime() time.Time {
	if d := c.date.Load(); d > 0 {
		return time.Unix(d, 0)
	}
	return time.Time{}
}

func (c *client) me(ctx context.Context) (*user, error) {
	var u user
	if err := c.do(ctx, http.MethodGet, "/api/v4/users/me", nil, &u); err != nil {
		return nil, err
	}
	if u.ID == "" || u.Username == "" {
		return nil, fmt.Errorf("GET /api/v4/users/me: %w: no id or username in the answer", adapter.ErrTemporary)
	}
	return &u, nil
}

// channels lists the channels the bot is a member of, in every team,
// direct and group messages included.
func (c *client) channels(ctx context.Context) ([]channel, error) {
	var teams []team
	if err := c.do(ctx, http.MethodGet, "/api/v4/users/me/teams", nil, &teams); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []channel
	for _, t := range teams {
		var chs []channel
		if err := c.do(ctx, http.MethodGet, "/api/v4/users/me/teams/"+url.PathEscape(t.ID)+"/channels", nil, &chs); err != nil {
			return nil, err
		}
		for _, ch := range chs {
			if ch.ID != "" && !seen[ch.ID] {
				seen[ch.ID] = true
				out = append(out, ch)
			}
		}
	}
	return out, nil
}

// postsSince returns the posts of channel created or changed after since
// (milliseconds).
func (c *client) postsSince(ctx context.Context, channelID string, since int64) ([]*post, error) {
	var pl postList
	path := "/api/v4/channels/" + url.PathEscape(channelID) + "/posts?since=" + strconv.FormatInt(since, 10)
	if err := c.do(ctx, http.MethodGet, path, nil, &pl); err != nil {
		return nil, err
	}
	out := make([]*post, 0, len(pl.Posts))
	for id, p := range pl.Posts {
		if p == nil {
			continue
		}
		if p.ID == "" {
			p.ID = id
		}
		out = append(out, p)
	}
	return out, nil
}

func (c *client) createPost(ctx context.Context, p *post) (*post, error) {
	var out post
	if err := c.do(ctx, http.MethodPost, "/api/v4/posts", p, &out); err != nil {
		return nil, err
	}
	if out.ID == "" {
		return nil, fmt.Errorf("POST /api/v4/posts: %w: no post id in the answer", adapter.ErrAmbiguous)
	}
	return &out, nil
}
