// SPDX-License-Identifier: Apache-2.0

package dingtalktest

import (
	"encoding/json"
	"net/http"
)

func (s *Server) accessToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AppKey    string `json:"appKey"`
		AppSecret string `json:"appSecret"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		apiError(w, 400, "InvalidParameter", err.Error())
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenReqs++
	s.changedLocked()
	if s.rejected || req.AppKey != s.opts.ClientID || req.AppSecret != s.opts.ClientSecret {
		apiError(w, 400, "invalidClientSecret", "appKey or appSecret is wrong")
		return
	}
	tok := newID("at")
	s.tokens[tok] = true
	writeJSON(w, 200, map[string]any{"accessToken": tok, "expireIn": TokenTTL})
}

type robotRequest struct {
	RobotCode          string   `json:"robotCode"`
	UserIDs            []string `json:"userIds"`
	OpenConversationID string   `json:"openConversationId"`
	MsgKey             string   `json:"msgKey"`
	MsgParam           string   `json:"msgParam"`
}

func (s *Server) robotSend(w http.ResponseWriter, r *http.Request) {
	var req robotRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		apiError(w, 400, "InvalidParameter", err.Error())
		return
	}
	var param struct {
		Content  string `json:"content"`  // sampleText
		PhotoURL string `json:"photoURL"` // sampleImageMsg: a media_id
		MediaID  string `json:"mediaId"`  // sampleFile
		FileName string `json:"fileName"`
		FileType string `json:"fileType"`
	}
	if json.Unmarshal([]byte(req.MsgParam), &param) != nil || req.RobotCode == "" {
		apiError(w, 400, "InvalidParameter", "msgParam or robotCode is invalid")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.changedLocked()
	if !s.tokens[r.Header.Get("x-acs-dingtalk-access-token")] {
		apiError(w, 401, "InvalidAuthentication", "access token is invalid or expired")
		return
	}
	if s.limitAPI > 0 {
		s.limitAPI--
		apiError(w, 403, "Forbidden.AccessDenied.QpsLimitForApi", "too many requests")
		return
	}
	sent := Sent{MsgKey: req.MsgKey, Text: param.Content, Robot: req.RobotCode}
	switch req.MsgKey {
	case "sampleText":
	case "sampleImageMsg":
		if up, ok := s.media[param.PhotoURL]; !ok || up.Type != "image" {
			apiError(w, 400, "InvalidParameter", "photoURL is not an image media_id")
			return
		}
		sent.MediaID = param.PhotoURL
	case "sampleFile":
		if up, ok := s.media[param.MediaID]; !ok || up.Type != "file" || param.FileName == "" || param.FileType == "" {
			apiError(w, 400, "InvalidParameter", "mediaId, fileName or fileType is invalid")
			return
		}
		sent.MediaID, sent.FileName, sent.FileType = param.MediaID, param.FileName, param.FileType
	default:
		apiError(w, 400, "InvalidParameter", "msgKey is not supported")
		return
	}
	if r.URL.Path == "/v1.0/robot/oToMessages/batchSend" {
		if len(req.UserIDs) != 1 {
			apiError(w, 400, "InvalidParameter", "userIds is required")
			return
		}
		sent.Via, sent.To = "batchSend", req.UserIDs[0]
		s.sent = append(s.sent, sent)
		writeJSON(w, 200, map[string]any{"processQueryKey": newID("pq"), "invalidStaffIdList": []string{}, "flowControlledStaffIdList": []string{}})
		return
	}
	if req.OpenConversationID == "" {
		apiError(w, 400, "InvalidParameter", "openConversationId is required")
		return
	}
	sent.Via, sent.To = "groupSend", req.OpenConversationID
	s.sent = append(s.sent, sent)
	writeJSON(w, 200, map[string]any{"processQueryKey": newID("pq")})
}

// Legacy errcodes of the session webhook.
const (
	// ErrCodeTooFast is "send too fast": the frequency limit.
	ErrCodeTooFast = 130101
	// ErrCodeSessionExpired is the fake's answer for an expired session
	// webhook.
	ErrCodeSessionExpired = 300001
)

func (s *Server) webhook(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Msgtype string `json:"msgtype"`
		Text    struct {
			Content string `json:"content"`
		} `json:"text"`
		At struct {
			IsAtAll bool `json:"isAtAll"`
		} `json:"at"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Msgtype != "text" {
		writeJSON(w, 200, map[string]any{"errcode": 40035, "errmsg": "invalid body"})
		return
	}
	var answer map[string]any
	s.mu.Lock()
	hold := false
	switch {
	case s.hooksDead:
		answer = map[string]any{"errcode": ErrCodeSessionExpired, "errmsg": "session webhook expired"}
	case s.limitHook > 0:
		s.limitHook--
		answer = map[string]any{"errcode": ErrCodeTooFast, "errmsg": "send too fast, exceed 20 times per minute"}
	default:
		s.sent = append(s.sent, Sent{Via: "webhook", To: r.URL.Query().Get("session"), Text: req.Text.Content, IsAtAll: req.At.IsAtAll})
		hold = s.holdHook
		answer = map[string]any{"errcode": 0, "errmsg": "ok"}
	}
	s.changedLocked()
	s.mu.Unlock()
	if hold {
		// The message is shown; its answer never comes.
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
		return
	}
	writeJSON(w, 200, answer)
}
