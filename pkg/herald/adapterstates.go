// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/config"
)

// platformStates is where platform instance name of type typ keeps its
// resume position: files in its state directory dir on this node, except
// in cluster mode for a leased platform, which moves between nodes: its
// position is kept in the cluster's store (bk), where the next holder
// finds it. A platform of every node keeps its own, per node.
func platformStates(cfg *config.Config, bk *natsBackend, name, typ, dir string, log *logrus.Entry) adapter.States {
	if cfg.Cluster.Enabled && bk != nil && adapter.Leased(typ) {
		return &sharedStates{open: bk.storeStates, instance: name, local: adapter.DirStates(dir), log: log}
	}
	return adapter.DirStates(dir)
}

// stateSaveTimeout bounds a Save or Remove of a leased platform's position
// (a JetStream write of a few hundred bytes: milliseconds). Adapters save
// while they stop (Discord saves its session before closing), and a stop
// must end within the lease's fencing bound; a save that misses the bound
// leaves the older position, from which the next holder replays what the
// store then drops as duplicates. Load, at the start of intake, has the
// store's own timeout.
const stateSaveTimeout = 2 * time.Second

// adapterStateStore is the part of the JetStream store that keeps the
// adapters' resume positions (jsstore.Store).
type adapterStateStore interface {
	AdapterState(ctx context.Context, instance, name string) ([]byte, bool, error)
	SetAdapterState(ctx context.Context, instance, name string, data []byte) error
	DeleteAdapterState(ctx context.Context, instance, name string) error
}

// sharedStates is the adapter.States of a leased platform instance in
// cluster mode: its resume position (Discord's session, the Mattermost
// cursor, the Matrix sync token, the Signal event id) lives in the
// cluster's store, so that the node that takes the platform over resumes
// where the last holder stopped instead of starting from the current
// position and losing what was sent in between. Load is bounded by the
// store's timeout, Save and Remove by stateSaveTimeout.
//
// Migration: when the store holds no value for a name and this node's
// state directory has a file for it (written before cluster mode was
// turned on), Load returns the file, copies it into the store and
// removes it, so the position is used once and not lost.
//
// A Load that cannot read the store (unreachable just then) leaves the
// adapter starting from the current position; its Saves of that name are
// then refused until a Load succeeds, so that the position in the store
// stays where the last holder left it for the next holder, instead of
// jumping past what was sent while nobody received.
type sharedStates struct {
	open     func() (adapterStateStore, error)
	instance string
	local    adapter.DirStates // this node's files of the instance
	log      *logrus.Entry

	mu       sync.Mutex
	unloaded map[string]bool // names whose last Load could not read the store
}

var _ adapter.States = (*sharedStates)(nil)

// Load reads name from the store, or migrates this node's file of it.
func (s *sharedStates) Load(name string, max int64) ([]byte, bool, error) {
	st, err := s.open()
	var data []byte
	var ok bool
	if err == nil {
		data, ok, err = st.AdapterState(context.Background(), s.instance, name)
	}
	s.mu.Lock()
	if s.unloaded == nil {
		s.unloaded = map[string]bool{}
	}
	s.unloaded[name] = err != nil
	s.mu.Unlock()
	if err != nil {
		return nil, false, err
	}
	if ok {
		if int64(len(data)) > max {
			return nil, false, fmt.Errorf("larger than %d bytes", max)
		}
		return data, true, nil
	}
	data, ok, err = s.local.Load(name, max)
	if err != nil || !ok {
		return nil, false, err
	}
	log := s.log.WithField("file", adapter.StateWhere(s.local, name))
	if err := st.SetAdapterState(context.Background(), s.instance, name, data); err != nil {
		// The file stays for the next attempt; the adapter's own saves go
		// to the store.
		log.WithError(err).Warn("cluster: cannot copy the platform's saved position into the store; using this node's file")
		return data, true, nil
	}
	if err := s.local.Remove(name); err != nil {
		log.WithError(err).Warn("cluster: the platform's saved position is in the store now, but this node's file of it cannot be removed")
	} else {
		log.Info("cluster: the platform's saved position moved from this node's state directory into the store")
	}
	return data, true, nil
}

// errNotLoaded refuses a Save after a Load that could not read the store.
var errNotLoaded = errors.New("the position in the store could not be read at start; not replacing it")

// Save writes name to the store, within stateSaveTimeout.
func (s *sharedStates) Save(name string, data []byte) error {
	s.mu.Lock()
	refused := s.unloaded[name]
	s.mu.Unlock()
	if refused {
		return errNotLoaded
	}
	st, err := s.open()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), stateSaveTimeout)
	defer cancel()
	return st.SetAdapterState(ctx, s.instance, name, data)
}

// Remove deletes name from the store, within stateSaveTimeout.
func (s *sharedStates) Remove(name string) error {
	st, err := s.open()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), stateSaveTimeout)
	defer cancel()
	return st.DeleteAdapterState(ctx, s.instance, name)
}

// String names the states in logs.
func (s *sharedStates) String() string { return "cluster store, platform " + s.instance }

// storeStates is the open function of sharedStates on the daemon's
// JetStream store: errStoreUnavailable until it opened.
func (bk *natsBackend) storeStates() (adapterStateStore, error) {
	js, err := bk.open()
	if err != nil {
		return nil, err
	}
	return js, nil
}
