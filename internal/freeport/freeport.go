// Package freeport hands tests loopback addresses to listen on, each one free a moment ago and never
// handed out twice in a process.
//
// Probing a port by listening on :0 and closing the listener is racy twice over: another process may
// take the port before the test listens, and the kernel may give the same just-closed port to the next
// probe, so two members of one test cluster could be handed the same address (seen: a node's client
// address equal to its peer address). This package removes the second race; servers that listen on :0
// themselves avoid both.
package freeport

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
)

var handedOut struct {
	sync.Mutex
	addrs map[string]bool
}

// Addr returns host:port on host (an IP address) that was free a moment ago and that no earlier call
// in this process returned. It fails the test if no such port turns up.
func Addr(t testing.TB, host string) string {
	t.Helper()
	ln, err := Listen(host)
	if err != nil {
		t.Fatalf("probe a free port on %s: %v", host, err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// Listen listens on a free port of host that Addr has not handed out (and marks it handed out), for
// servers that listen on :0 while other addresses probed by Addr still wait for their servers: the
// kernel could otherwise give such a probed port to this listener.
func Listen(host string) (net.Listener, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.addrs == nil {
		handedOut.addrs = make(map[string]bool)
	}
	var rejected []net.Listener
	defer func() {
		for _, ln := range rejected {
			_ = ln.Close()
		}
	}()
	for range 100 {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, err
		}
		if addr := ln.Addr().String(); !handedOut.addrs[addr] {
			handedOut.addrs[addr] = true
			return ln, nil
		}
		rejected = append(rejected, ln) // held open until the end, so the kernel offers another port
	}
	return nil, fmt.Errorf("freeport: 100 listeners on %s got only addresses already handed out", host)
}

// Port is Addr on 127.0.0.1, as a port number.
func Port(t testing.TB) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(Addr(t, "127.0.0.1"))
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("probe a free port: %q is not a port: %v", port, err)
	}
	return n
}
