// SPDX-License-Identifier: Apache-2.0

package whatsapp

import (
	"regexp"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/secret"
)

// Defaults and bounds of Config.
const (
	DefaultGraphURL       = "https://graph.facebook.com"
	DefaultAPIVersion     = "v21.0"
	DefaultMaxBodyBytes   = 1 << 20
	DefaultRequestTimeout = 10 * time.Second
	// MaxTextLen is WhatsApp's limit for the body of a text message, in
	// characters.
	MaxTextLen = 4096
	// Window is WhatsApp's customer-service window: free-form messages may
	// be sent to a user only this long after the user's last message.
	Window = 24 * time.Hour

	maxMaxBodyBytes   = 32 << 20
	maxRequestTimeout = 5 * time.Minute
)

// Config is the configuration of one WhatsApp platform instance, the keys
// of its section under platforms:. NewConfig returns it with defaults;
// README.md documents every key.
type Config struct {
	// PhoneNumberID is the Graph API id of the business phone number that
	// sends (not the phone number itself). Required.
	PhoneNumberID string `yaml:"phone_number_id"`
	// AccessToken is the system-user or app access token sent as a bearer
	// token. Required.
	AccessToken secret.Ref `yaml:"access_token"`
	// AppSecret verifies X-Hub-Signature-256 on inbound webhooks. Required.
	AppSecret secret.Ref `yaml:"app_secret"`
	// VerifyToken is the token entered in the app dashboard for the
	// callback URL's GET handshake. Required.
	VerifyToken secret.Ref `yaml:"verify_token"`
	// Path is the callback URL path herald serves. Default
	// /whatsapp/<instance name>.
	Path string `yaml:"path"`
	// GraphURL is the Graph API base URL. Default https://graph.facebook.com.
	GraphURL string `yaml:"graph_url"`
	// APIVersion is the Graph API version path segment. Default v21.0.
	APIVersion string `yaml:"api_version"`
	// AdapterLimits: request_timeout and max_message_len.
	// RequestTimeout bounds every Graph API call, and reading and storing
	// one webhook request. Default 10s.
	// MaxMessageLen is the split size for replies in characters. Default
	// and maximum 4096.
	config.AdapterLimits `yaml:",inline"`
	// MaxBodyBytes is the largest webhook body accepted (413 above).
	// Default 1 MiB.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// TemplateName is an approved message template sent instead of a
	// free-form push outside the 24-hour window. Empty: such pushes fail.
	TemplateName string `yaml:"template_name"`
	// TemplateLanguage is the template's language code. Default en_US.
	TemplateLanguage string `yaml:"template_language"`
	// TemplateTextParam passes the message text as the template body's
	// single variable {{1}}. Default false: the template is sent as it is.
	TemplateTextParam bool `yaml:"template_text_param"`
}

// NewConfig returns a Config with defaults filled in.
func NewConfig() *Config {
	return &Config{
		GraphURL:         DefaultGraphURL,
		APIVersion:       DefaultAPIVersion,
		AdapterLimits:    config.AdapterLimits{RequestTimeout: DefaultRequestTimeout, MaxMessageLen: MaxTextLen},
		MaxBodyBytes:     DefaultMaxBodyBytes,
		TemplateLanguage: "en_US",
	}
}

// maxTemplateName is the longest template name WhatsApp accepts.
const maxTemplateName = 512

var (
	digits    = regexp.MustCompile(`^[0-9]{1,32}$`)
	versionRE = regexp.MustCompile(`^v[0-9]{1,3}\.[0-9]{1,3}$`)
	// The length (1 to maxTemplateName) is checked apart: a bounded
	// repetition {1,512} compiles to 512 copies of the class, about a
	// millisecond of every herald start (package initialisation).
	templateRE = regexp.MustCompile(`^[a-z0-9_]+$`)
	languageRE = regexp.MustCompile(`^[a-z]{2,3}(_[A-Za-z]{2,4})?$`)
)

// Validate checks c (config.Validator). Secret files are read by New.
func (c *Config) Validate() error {
	var ck config.Checks
	if !digits.MatchString(c.PhoneNumberID) {
		ck.Add("phone_number_id", "%q is not a Graph API phone number id (digits)", c.PhoneNumberID)
	}
	ck.Secret("access_token", c.AccessToken, "")
	ck.Secret("app_secret", c.AppSecret, "")
	ck.Secret("verify_token", c.VerifyToken, "")
	ck.Path("path", c.Path)
	ck.BaseURL("graph_url", c.GraphURL)
	if !versionRE.MatchString(c.APIVersion) {
		ck.Add("api_version", "%q is not a Graph API version such as v21.0", c.APIVersion)
	}
	c.AdapterLimits.Check(&ck, maxRequestTimeout, MaxTextLen)
	ck.Bytes("max_body_bytes", c.MaxBodyBytes, maxMaxBodyBytes)
	if c.TemplateName != "" && (len(c.TemplateName) > maxTemplateName || !templateRE.MatchString(c.TemplateName)) {
		ck.Add("template_name", "%q is not a template name (lowercase letters, digits, _)", c.TemplateName)
	}
	if !languageRE.MatchString(c.TemplateLanguage) {
		ck.Add("template_language", "%q is not a language code such as en_US", c.TemplateLanguage)
	}
	if c.TemplateTextParam && c.TemplateName == "" {
		ck.Add("template_text_param", "needs template_name")
	}
	return ck.Err()
}

// TypeName is the adapter type, platforms.<name>.type.
const TypeName = "whatsapp"

func init() {
	t := adapter.Define(TypeName, NewConfig, New)
	// Webhooks arrive on herald.socket, which starts herald.
	t.Passive = true
	t.EveryNode = true
	adapter.Register(t)
}
