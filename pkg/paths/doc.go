// SPDX-License-Identifier: Apache-2.0

// Package paths names the files and directories of a packaged herald: what
// the .deb and .rpm install and what units/herald.service and
// units/herald-admin.socket give herald. Code that needs one of them (the
// command's defaults, doctor's advice, the man page generator) uses these
// constants instead of a string literal; a test keeps them in step with the
// unit files and the package description.
package paths

const (
	// ConfigDir is the configuration directory (ConfigurationDirectory=).
	ConfigDir = "/etc/herald"
	// ConfigFile is the packaged configuration file, the default of every
	// command that takes --config.
	ConfigFile = ConfigDir + "/herald.yaml"
	// CredentialsDir holds the secret files the unit passes to herald
	// (LoadCredential=herald:CredentialsDir), readable by root only.
	CredentialsDir = ConfigDir + "/credentials"
	// StateDir is herald's state directory (StateDirectory=).
	StateDir = "/var/lib/herald"
	// StoreFile is the message store of a packaged install.
	StoreFile = StateDir + "/herald.db"
	// RuntimeDir is herald's runtime directory (RuntimeDirectory=).
	RuntimeDir = "/run/herald"
	// AdminSocket is the admin socket herald-admin.socket listens on.
	AdminSocket = RuntimeDir + "/admin.sock"
)
