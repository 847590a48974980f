package mtls

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// BenchmarkMutualHandshake measures one mutual TLS 1.3 handshake over
// loopback with ECDSA P-256 certificates, as a node pays it per new peer
// or client connection (the files' stat included).
func BenchmarkMutualHandshake(b *testing.B) {
	f := newFixture(b)
	src, err := Load("tls.peer", f.node(time.Hour), Peer, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", src.ServerConfig())
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			_, _ = c.Read(make([]byte, 1))
			c.Close()
		}
	}()
	defer func() { ln.Close(); <-done }()
	addr := ln.Addr().String()
	b.ResetTimer()
	for b.Loop() {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		tc := tls.Client(conn, src.ClientConfig("127.0.0.1"))
		if err := tc.Handshake(); err != nil {
			b.Fatal(err)
		}
		_, _ = tc.Write([]byte{'R'})
		tc.Close()
	}
}
