// SPDX-License-Identifier: Apache-2.0

package feishutest

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestResource: the fake serves a resource only with a token it issued and
// only for its own message, key and type.
func TestResource(t *testing.T) {
	s := New(t, Options{})
	s.AddResource("om_1", "img_1", "image", Resource{Data: []byte("png"), ContentType: "image/png"})
	resp, err := http.Post(s.URL()+"/open-apis/auth/v3/tenant_access_token/internal", "application/json",
		strings.NewReader(`{"app_id":"cli_test","app_secret":"test-secret"}`))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		Token string `json:"tenant_access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || tok.Token == "" {
		t.Fatalf("token: %v %+v", err, tok)
	}
	get := func(path, token string) (int, string, string) {
		req, _ := http.NewRequest(http.MethodGet, s.URL()+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	if st, ct, body := get("/open-apis/im/v1/messages/om_1/resources/img_1?type=image", tok.Token); st != 200 || ct != "image/png" || body != "png" {
		t.Errorf("resource: %d %s %q", st, ct, body)
	}
	for _, path := range []string{
		"/open-apis/im/v1/messages/om_2/resources/img_1?type=image",
		"/open-apis/im/v1/messages/om_1/resources/img_1?type=file",
		"/open-apis/im/v1/messages/om_1/resources/img_9?type=image",
	} {
		if st, _, body := get(path, tok.Token); st != 400 || !strings.Contains(body, "234001") {
			t.Errorf("%s: %d %s", path, st, body)
		}
	}
	if st, _, body := get("/open-apis/im/v1/messages/om_1/resources/img_1?type=image", "t-forged"); st != 400 || !strings.Contains(body, "99991663") {
		t.Errorf("forged token: %d %s", st, body)
	}
}
