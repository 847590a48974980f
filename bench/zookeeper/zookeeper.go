// Package zookeeper drives a ZooKeeper ensemble through loadgen's System interface, with the lock
// recipe of github.com/go-zookeeper/zk (zk.NewLock: an ephemeral sequential node per waiter, each
// watching the one before it), so dlock's workloads run against it like for like.
//
// Each simulated client is one zk.Conn, that is one ZooKeeper session with its own TCP connection, as
// separate processes would be. Lock and key names are path-escaped into one node each, under
// /dlock-bench/locks and /dlock-bench/kv, so no name needs parent nodes of its own.
package zookeeper

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/dlock-raft/dlock/internal/loadgen"
)

const (
	root      = "/dlock-bench"
	locksRoot = root + "/locks"
	kvRoot    = root + "/kv"
	// SessionTimeoutMin is ZooKeeper's floor on a session timeout with the default tickTime of 2s: the
	// server raises any shorter request to minSessionTimeout = 2 × tickTime.
	SessionTimeoutMin = 4 * time.Second
)

// System is a loadgen.System over one ZooKeeper ensemble. It holds only the server list; every
// Session owns its own connection, so System is safe for concurrent use.
type System struct {
	servers []string
}

// New returns a System for the ensemble's client addresses (host:port). It creates the benchmark's
// parent nodes once, so that sessions never race to create them.
func New(ctx context.Context, servers []string) (*System, error) {
	s := &System{servers: append([]string(nil), servers...)}
	c, err := s.connect(ctx, SessionTimeoutMin)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	for _, p := range []string{root, locksRoot, kvRoot} {
		if _, err := c.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return nil, fmt.Errorf("zookeeper: create %s: %w", p, err)
		}
	}
	return s, nil
}

// Name implements loadgen.System.
func (s *System) Name() string { return "zookeeper" }

// Close implements loadgen.System. Sessions own their connections, so there is nothing to close.
func (s *System) Close() error { return nil }

// SessionTimeout is the ZooKeeper session timeout asked for a loadgen TTL: the TTL, raised to
// ZooKeeper's floor. Like a dlock lease or an etcd lease, it is how long a crashed client keeps its
// locks.
func SessionTimeout(ttl time.Duration) time.Duration { return max(ttl, SessionTimeoutMin) }

// Session implements loadgen.System: it connects and waits, within ctx, until the server has granted
// the session.
func (s *System) Session(ctx context.Context, cfg loadgen.SessionConfig) (loadgen.Session, error) {
	sess := &session{sys: s, timeout: SessionTimeout(cfg.TTL)}
	if err := sess.open(ctx); err != nil {
		return nil, err
	}
	return sess, nil
}

// connect dials the ensemble and waits for the session. zk.Connect returns before the session exists;
// its event channel drops events once full, so after this wait nobody needs to read it.
func (s *System) connect(ctx context.Context, timeout time.Duration) (*zk.Conn, error) {
	c, events, err := zk.Connect(s.servers, timeout, zk.WithLogInfo(false), zk.WithLogger(quiet{}))
	if err != nil {
		return nil, fmt.Errorf("zookeeper: connect %v: %w", s.servers, err)
	}
	// An ensemble that is up but grants no session (its connection cap reached, a member stuck in an
	// election) must not hang the benchmark: the wait is bounded like etcd's dial.
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				return c, nil
			}
		case <-ctx.Done():
			c.Close()
			return nil, fmt.Errorf("zookeeper: wait for a session with %v: %w", s.servers, ctx.Err())
		}
	}
}

// quiet drops the library's log lines: it logs every reconnect during a failover, which the run
// counts as errors already.
type quiet struct{}

func (quiet) Printf(string, ...any) {}

// session is one client. loadgen calls it from one goroutine, so its fields need no lock.
type session struct {
	sys     *System
	timeout time.Duration
	c       *zk.Conn // nil after an abandoned Acquire closed it, until the next call opens another
	locks   map[string]*zk.Lock
	dirty   map[string]bool // names whose last Lock or Unlock failed midway: see Acquire
}

// open connects a new ZooKeeper session; its locks start unheld.
func (s *session) open(ctx context.Context) error {
	c, err := s.sys.connect(ctx, s.timeout)
	if err != nil {
		return err
	}
	s.c, s.locks, s.dirty = c, map[string]*zk.Lock{}, map[string]bool{}
	return nil
}

// conn returns the session's connection, opening a new one if an abandoned Acquire closed the last.
func (s *session) conn(ctx context.Context) (*zk.Conn, error) {
	if s.c == nil {
		if err := s.open(ctx); err != nil {
			return nil, err
		}
	}
	return s.c, nil
}

func lockPath(name string) string { return locksRoot + "/" + url.PathEscape(name) }
func keyPath(key string) string   { return kvRoot + "/" + url.PathEscape(key) }

// Acquire runs the library's Lock, which takes no context. It runs on a goroutine that Acquire waits
// for. If ctx ends first, Acquire closes the connection: that is the only way to make Lock return (its
// pending requests and watches fail with ErrClosing), and ending the ZooKeeper session deletes the
// waiter's node, withdrawing it from the queue. The next call opens a new session, as a user of the
// recipe who must bound a wait would have to; every lock of the old session is lost with it.
//
// The recipe leaves a mess when a request fails midway (a connection lost during a leader's failover):
// a Lock may fail after creating its node, which then stays in the queue for as long as the session
// lives and would block this session's next Lock behind itself; an Unlock that failed leaves the
// recipe believing it still holds the lock, so the next Lock fails at once with ErrDeadlock. So after
// either failure the name is marked dirty, and the next Acquire first deletes every node this session
// has in the lock's queue, as a careful user of the recipe would.
func (s *session) Acquire(ctx context.Context, name string) error {
	c, err := s.conn(ctx)
	if err != nil {
		return err
	}
	l, err := s.lock(c, name)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- l.Lock() }()
	select {
	case err := <-done:
		if err != nil {
			s.dirty[name] = true
		}
		return err
	case <-ctx.Done():
		c.Close()
		<-done
		s.c = nil
		return fmt.Errorf("zookeeper: acquire %q abandoned, session closed: %w", name, ctx.Err())
	}
}

// lock returns the recipe's lock for name, withdrawing this session from the lock's queue first if
// an earlier Lock or Unlock failed.
func (s *session) lock(c *zk.Conn, name string) (*zk.Lock, error) {
	if s.dirty[name] {
		if err := withdraw(c, lockPath(name)); err != nil {
			return nil, err
		}
		delete(s.dirty, name)
		delete(s.locks, name)
	}
	l, ok := s.locks[name]
	if !ok {
		l = zk.NewLock(c, lockPath(name), zk.WorldACL(zk.PermAll))
		s.locks[name] = l
	}
	return l, nil
}

// withdraw deletes every node that c's session has under the lock node p.
func withdraw(c *zk.Conn, p string) error {
	children, _, err := c.Children(p)
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("zookeeper: withdraw from %s: %w", p, err)
	}
	for _, ch := range children {
		_, st, err := c.Get(p + "/" + ch)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return fmt.Errorf("zookeeper: withdraw from %s: %w", p, err)
		}
		if st.EphemeralOwner != c.SessionID() {
			continue
		}
		if err := c.Delete(p+"/"+ch, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return fmt.Errorf("zookeeper: withdraw from %s: %w", p, err)
		}
	}
	return nil
}

// Release runs the library's Unlock: it deletes the session's node, which wakes the next waiter.
// Unlock takes no context either; a Delete is one request, which the library times out itself when
// the connection stops answering. A failed Unlock marks the name dirty (see Acquire).
func (s *session) Release(_ context.Context, name string) error {
	l, ok := s.locks[name]
	if !ok || s.c == nil {
		return fmt.Errorf("zookeeper: release %q: not acquired by this session", name)
	}
	if err := l.Unlock(); err != nil {
		s.dirty[name] = true
		return err
	}
	return nil
}

// Put writes value under key: Set, or Create if the node does not exist yet (Set again if another
// client created it first). Writes go through ZooKeeper's leader and are committed on a quorum.
func (s *session) Put(ctx context.Context, key string, value []byte) error {
	c, err := s.conn(ctx)
	if err != nil {
		return err
	}
	p := keyPath(key)
	_, err = c.Set(p, value, -1)
	if !errors.Is(err, zk.ErrNoNode) {
		return err
	}
	_, err = c.Create(p, value, 0, zk.WorldACL(zk.PermAll))
	if errors.Is(err, zk.ErrNodeExists) {
		_, err = c.Set(p, value, -1)
	}
	return err
}

// Get is Sync then Get. A ZooKeeper read is served from the connected server's local state, which may
// lag the leader; Sync first makes that server catch up with the leader, which is what makes the read
// comparable with dlock's and etcd's linearizable reads. A missing node is not an error.
func (s *session) Get(ctx context.Context, key string) error {
	c, err := s.conn(ctx)
	if err != nil {
		return err
	}
	p := keyPath(key)
	if _, err := c.Sync(p); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return err
	}
	_, _, err = c.Get(p)
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	return err
}

// Query is Sync then Children of the lock's node: the recipe's holder is the child with the lowest
// sequence number. A lock nobody has taken yet has no node, which is not an error.
func (s *session) Query(ctx context.Context, name string) error {
	c, err := s.conn(ctx)
	if err != nil {
		return err
	}
	p := lockPath(name)
	if _, err := c.Sync(p); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return err
	}
	_, _, err = c.Children(p)
	if errors.Is(err, zk.ErrNoNode) {
		return nil
	}
	return err
}

// Close ends the session, which deletes its ephemeral lock nodes. zk.Conn.Close reports no error.
func (s *session) Close() error {
	if s.c != nil {
		s.c.Close()
		s.c = nil
	}
	return nil
}
