// SPDX-License-Identifier: Apache-2.0

// Package userinstall installs herald as a service of the calling user's
// systemd user manager (`herald install --user`) and removes it again
// (`herald uninstall --user`). Nothing in it needs root.
//
// Install copies the running binary to ~/.local/bin/herald, writes the
// units of package units/user into ~/.config/systemd/user, writes a
// starter configuration ~/.config/herald/herald.yaml unless one exists
// (a second install keeps the user's edits), creates the credentials
// directory ~/.config/herald/credentials (0700) and the state directory
// ~/.local/state/herald (0700), then enables and starts herald.socket,
// herald-admin.socket and herald.service with `systemctl --user`. It is
// idempotent: files already as they should be are left alone, and the
// service is restarted only if its binary or units changed.
//
// A user manager runs only while its user is logged in, unless lingering
// is on (`loginctl enable-linger USER`, which logind records as the file
// /var/lib/systemd/linger/USER): then it starts at boot and keeps running.
// Install says which applies; Linger tells `herald doctor`.
//
// Uninstall stops and disables the units, removes the unit files, the
// binary copy and the runtime directory, and leaves the configuration, the
// credentials, the state and any drop-ins the user wrote, saying so.
package userinstall
