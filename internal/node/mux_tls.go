package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// PeerTLS supplies the peer plane's TLS configurations. With one, every
// connection on the peer port is TLS from its first byte: the protocol byte
// that picks Raft or the peer service travels inside it, so both protocols
// are covered by one handshake. *mtls.Source implements it.
type PeerTLS interface {
	// ServerConfig is the configuration for connections peers open to
	// this node; it must require and verify their certificates.
	ServerConfig() *tls.Config
	// ClientConfig is the configuration for one connection this node
	// opens to a peer whose host (DNS name or IP) is serverName.
	ClientConfig(serverName string) *tls.Config
}

// handshakeServer runs the TLS handshake on an accepted connection, under
// the first-byte deadline already set on conn. A refused peer is logged,
// except one that closed without a word (a port probe).
func (m *mux) handshakeServer(conn net.Conn) (net.Conn, error) {
	// A TLS connection opens with a handshake record; anything else is a
	// plaintext peer (one whose config lacks tls.peer), refused at once.
	var first [1]byte
	if _, err := io.ReadFull(conn, first[:]); err != nil {
		return nil, err
	}
	if first[0] != recordTypeHandshake {
		m.log.Warn("refused a peer connection: not TLS (is tls.peer set on every node?)", "remote", conn.RemoteAddr().String())
		return nil, errPlaintextPeer
	}
	tconn := tls.Server(&prefixConn{Conn: conn, prefix: first[:]}, m.tls.ServerConfig())
	if err := tconn.Handshake(); err != nil {
		if !errors.Is(err, io.EOF) {
			m.log.Warn("refused a peer connection: TLS handshake failed", "remote", conn.RemoteAddr().String(), "err", err)
		}
		return nil, err
	}
	return tconn, nil
}

// dialTLS opens a tracked TLS connection to a peer port for proto: the
// TCP connection is tracked first, so closing the mux also ends a
// handshake in progress.
func (m *mux) dialTLS(address string, timeout time.Duration, proto byte) (net.Conn, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: timeout}
	raw, err := d.Dial("tcp", address)
	if err != nil {
		return nil, err
	}
	tc, err := m.track(raw)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn := tls.Client(tc, m.tls.ClientConfig(host))
	if err := conn.HandshakeContext(ctx); err != nil {
		tc.Close()
		return nil, fmt.Errorf("TLS handshake with peer %s: %w", address, err)
	}
	_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte{proto}); err != nil {
		tc.Close()
		return nil, fmt.Errorf("announce protocol to %s: %w", address, err)
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, nil
}

// recordTypeHandshake is the first byte of a TLS client's first record.
const recordTypeHandshake = 0x16

const errPlaintextPeer = errString("plaintext connection on a TLS peer port")

// prefixConn is a connection whose first bytes were already read.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(b, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}
