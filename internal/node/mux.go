package node

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// The peer port carries two protocols: Raft's own RPCs and the peer gRPC
// service (forwarded proposals and read indexes). The first byte of every
// connection says which, so one address per node serves both; followers can
// forward to a leader at the address Raft already reaches, whatever the
// client addresses look like from inside a container.
const (
	protoRaft byte = 'R'
	protoPeer byte = 'P'
)

// muxFirstByteTimeout bounds how long an accepted connection may stay silent
// before it says which protocol it speaks.
const muxFirstByteTimeout = 10 * time.Second

// mux accepts connections on the peer port and hands each to the listener of
// its protocol.
type mux struct {
	ln        net.Listener
	advertise net.Addr
	raft      *chanListener
	peer      *chanListener
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	connsMu sync.Mutex
	conns   map[*trackedConn]struct{} // every live connection, closed with the mux
	closed  bool

	tls PeerTLS      // nil: plaintext (see mux_tls.go)
	log *slog.Logger // for refused TLS peers
}

// trackedConn is a connection the mux closes when it closes, so that a
// stopped node leaves no connection (and no goroutine reading one) behind,
// as a stopped process would.
type trackedConn struct {
	net.Conn
	m    *mux
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.m.connsMu.Lock()
		delete(c.m.conns, c)
		c.m.connsMu.Unlock()
	})
	return err
}

// track registers conn; it is closed at once if the mux already closed.
func (m *mux) track(conn net.Conn) (net.Conn, error) {
	tc := &trackedConn{Conn: conn, m: m}
	m.connsMu.Lock()
	defer m.connsMu.Unlock()
	if m.closed {
		conn.Close()
		return nil, net.ErrClosed
	}
	m.conns[tc] = struct{}{}
	return tc, nil
}

// newMux serves the peer port on ln; with peerTLS, every connection is
// TLS (see PeerTLS).
func newMux(ln net.Listener, advertise string, peerTLS PeerTLS, log *slog.Logger) *mux {
	adv, err := net.ResolveTCPAddr("tcp", advertise)
	if err != nil {
		// Unresolvable names (a peer's compose service name seen from
		// elsewhere) still make a usable advertise address for Raft.
		adv = nil
	}
	m := &mux{ln: ln, done: make(chan struct{}), conns: make(map[*trackedConn]struct{}), tls: peerTLS, log: log}
	if adv != nil {
		m.advertise = adv
	} else {
		m.advertise = stringAddr(advertise)
	}
	m.raft = newChanListener(ln.Addr(), m.done)
	m.peer = newChanListener(ln.Addr(), m.done)
	m.wg.Add(1)
	go m.serve()
	return m
}

type stringAddr string

func (a stringAddr) Network() string { return "tcp" }
func (a stringAddr) String() string  { return string(a) }

func (m *mux) serve() {
	defer m.wg.Done()
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		tc, err := m.track(conn)
		if err != nil {
			return
		}
		m.wg.Add(1)
		go m.route(tc)
	}
}

// route reads the protocol byte and hands the connection on.
func (m *mux) route(conn net.Conn) {
	defer m.wg.Done()
	_ = conn.SetReadDeadline(time.Now().Add(muxFirstByteTimeout))
	if m.tls != nil {
		tconn, err := m.handshakeServer(conn)
		if err != nil {
			conn.Close()
			return
		}
		conn = tconn
	}
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	var target *chanListener
	switch b[0] {
	case protoRaft:
		target = m.raft
	case protoPeer:
		target = m.peer
	default:
		conn.Close()
		return
	}
	if !target.deliver(conn) {
		conn.Close()
	}
}

// Close stops accepting and closes both protocol listeners. Idempotent.
func (m *mux) Close() error {
	m.closeOnce.Do(func() {
		close(m.done)
		m.ln.Close()
		m.connsMu.Lock()
		m.closed = true
		conns := make([]*trackedConn, 0, len(m.conns))
		for c := range m.conns {
			conns = append(conns, c)
		}
		m.connsMu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	m.wg.Wait()
	return nil
}

// chanListener is a net.Listener fed by the mux.
type chanListener struct {
	addr  net.Addr
	conns chan net.Conn
	done  <-chan struct{}
}

func newChanListener(addr net.Addr, done <-chan struct{}) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: done}
}

func (l *chanListener) deliver(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close is a no-op: the mux owns the underlying listener.
func (l *chanListener) Close() error   { return nil }
func (l *chanListener) Addr() net.Addr { return l.addr }

// dialProto opens a connection to a peer port and announces the protocol.
func dialProto(network, address string, timeout time.Duration, proto byte) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	conn, err := d.Dial(network, address)
	if err != nil {
		return nil, err
	}
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte{proto}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("announce protocol to %s: %w", address, err)
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, nil
}

// raftStream is the raft.StreamLayer over the mux.
type raftStream struct{ m *mux }

func (s raftStream) Accept() (net.Conn, error) { return s.m.raft.Accept() }
func (s raftStream) Close() error              { return s.m.Close() }
func (s raftStream) Addr() net.Addr            { return s.m.advertise }

func (s raftStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.m.dial(string(address), timeout, protoRaft)
}

// dial opens a tracked connection to a peer port for proto.
func (m *mux) dial(address string, timeout time.Duration, proto byte) (net.Conn, error) {
	if m.tls != nil {
		return m.dialTLS(address, timeout, proto)
	}
	conn, err := dialProto("tcp", address, timeout, proto)
	if err != nil {
		return nil, err
	}
	return m.track(conn)
}
