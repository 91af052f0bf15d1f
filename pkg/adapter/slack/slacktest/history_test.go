// SPDX-License-Identifier: Apache-2.0

package slacktest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func list(t *testing.T, s *Server, method string, q url.Values) map[string]any {
	t.Helper()
	_, out := callAs(t, s, method, s.BotToken(), "application/x-www-form-urlencoded", q.Encode())
	return out
}

func texts(out map[string]any) []string {
	var got []string
	msgs, _ := out["messages"].([]any)
	for _, m := range msgs {
		got = append(got, m.(map[string]any)["text"].(string))
	}
	return got
}

func TestHistoryAndReplies(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	defer http.DefaultClient.CloseIdleConnections()
	post := func(body string) string {
		t.Helper()
		_, out := call(t, s, "chat.postMessage", s.BotToken(), body)
		if out["ok"] != true {
			t.Fatalf("post %s: %v", body, out)
		}
		return out["ts"].(string)
	}
	first := post(`{"channel":"C1","text":"one","metadata":{"event_type":"herald_reply","event_payload":{"key":"k1"}}}`)
	parent := post(`{"channel":"C1","text":"two"}`)
	post(`{"channel":"C1","text":"in thread","thread_ts":"` + parent + `","metadata":"{\"event_type\":\"herald_reply\",\"event_payload\":{\"key\":\"k3\"}}"}`)
	post(`{"channel":"C2","text":"elsewhere"}`)
	if _, out := call(t, s, "chat.postMessage", s.BotToken(), `{"channel":"C1","text":"x","metadata":{"event_payload":{}}}`); out["error"] != "invalid_metadata_format" {
		t.Fatalf("metadata without event_type: %v", out)
	}

	out := list(t, s, "conversations.history", url.Values{"channel": {"C1"}})
	if got := strings.Join(texts(out), ","); got != "two,one" {
		t.Fatalf("history %q, want the top level newest first", got)
	}
	for _, m := range out["messages"].([]any) {
		if _, ok := m.(map[string]any)["metadata"]; ok {
			t.Fatal("metadata returned without include_all_metadata")
		}
	}
	out = list(t, s, "conversations.history", url.Values{"channel": {"C1"}, "include_all_metadata": {"true"}, "oldest": {first}})
	if got := strings.Join(texts(out), ","); got != "two" {
		t.Fatalf("history after oldest (exclusive) %q", got)
	}
	out = list(t, s, "conversations.history", url.Values{"channel": {"C1"}, "include_all_metadata": {"true"}, "oldest": {first}, "inclusive": {"true"}, "limit": {"1"}})
	if got := strings.Join(texts(out), ","); got != "two" || out["has_more"] != true {
		t.Fatalf("first page %q has_more %v", got, out["has_more"])
	}
	cursor := out["response_metadata"].(map[string]any)["next_cursor"].(string)
	out = list(t, s, "conversations.history", url.Values{"channel": {"C1"}, "include_all_metadata": {"true"}, "oldest": {first}, "inclusive": {"true"}, "limit": {"1"}, "cursor": {cursor}})
	msgs := out["messages"].([]any)
	if len(msgs) != 1 || out["has_more"] != false {
		t.Fatalf("second page %v", out)
	}
	md := msgs[0].(map[string]any)["metadata"].(map[string]any)
	if md["event_type"] != "herald_reply" || md["event_payload"].(map[string]any)["key"] != "k1" {
		t.Fatalf("metadata %v", md)
	}

	out = list(t, s, "conversations.replies", url.Values{"channel": {"C1"}, "ts": {parent}, "include_all_metadata": {"true"}})
	if got := strings.Join(texts(out), ","); got != "two,in thread" {
		t.Fatalf("replies %q, want the parent then the reply", got)
	}
	reply := out["messages"].([]any)[1].(map[string]any)
	if reply["thread_ts"] != parent || reply["metadata"].(map[string]any)["event_payload"].(map[string]any)["key"] != "k3" {
		t.Fatalf("reply %v", reply)
	}
	if out := list(t, s, "conversations.replies", url.Values{"channel": {"C1"}}); out["error"] != "invalid_arguments" {
		t.Fatalf("replies without ts: %v", out)
	}
	if out := list(t, s, "conversations.history", url.Values{}); out["error"] != "channel_not_found" {
		t.Fatalf("history without channel: %v", out)
	}
}
