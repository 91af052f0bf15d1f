// SPDX-License-Identifier: Apache-2.0

// Package user holds herald's units for the systemd user manager
// (`systemctl --user`): herald.service, herald.socket and
// herald-admin.socket, embedded so that `herald install --user` writes the
// very files in this directory into ~/.config/systemd/user.
package user
