package faultnet

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer answers every line with the same line, as node 2.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			go func() { _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func dialLink(t *testing.T, f *Fabric) net.Conn {
	t.Helper()
	addr, err := f.Link(1, 2, "127.0.0.1", echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends a line and reads the echo, giving up after wait.
func roundTrip(c net.Conn, wait time.Duration) (string, error) {
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

func TestDeliversWithoutFaults(t *testing.T) {
	f := New(1)
	defer f.Close()
	c := dialLink(t, f)
	if got, err := roundTrip(c, 5*time.Second); err != nil || got != "ping\n" {
		t.Fatalf("round trip = %q, %v; want ping", got, err)
	}
}

func TestBlockStallsThenHealResetsStalledConnections(t *testing.T) {
	f := New(1)
	defer f.Close()
	c := dialLink(t, f)
	f.Block(1, 2)
	if got, err := roundTrip(c, 200*time.Millisecond); err == nil {
		t.Fatalf("blocked link delivered %q", got)
	}
	f.Heal()
	// The stalled connection is reset, as after a real partition ...
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("stalled connection still open after heal")
	}
	// ... and new connections work.
	c2, err := net.Dial("tcp", f.links[0].ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got, err := roundTrip(c2, 5*time.Second); err != nil || got != "ping\n" {
		t.Fatalf("after heal: %q, %v", got, err)
	}
}

func TestOneWayBlockStopsOnlyThatDirection(t *testing.T) {
	f := New(1)
	defer f.Close()
	c := dialLink(t, f)
	// Node 2's answers are blocked: the request arrives (the echo server
	// writes it back) but the answer never does.
	f.Block(2, 1)
	if got, err := roundTrip(c, 200*time.Millisecond); err == nil {
		t.Fatalf("answer crossed a blocked direction: %q", got)
	}
	if !f.dirs[[2]int{2, 1}].blocked || f.dirs[[2]int{1, 2}].blocked {
		t.Fatal("Block(2, 1) changed the wrong direction")
	}
}

func TestDelayHoldsMessagesBack(t *testing.T) {
	f := New(1)
	defer f.Close()
	c := dialLink(t, f)
	f.SetDelay(1, 2, 100*time.Millisecond, 0)
	start := time.Now()
	if got, err := roundTrip(c, 5*time.Second); err != nil || got != "ping\n" {
		t.Fatalf("delayed round trip = %q, %v", got, err)
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Fatalf("round trip took %v through a 100ms delay", took)
	}
}

func TestLossResetsTheConnection(t *testing.T) {
	f := New(1)
	defer f.Close()
	c := dialLink(t, f)
	f.SetLoss(1, 2, 1)
	if got, err := roundTrip(c, 5*time.Second); err == nil {
		t.Fatalf("lost message delivered: %q", got)
	}
}

func TestSameSeedSameDraws(t *testing.T) {
	a, b := New(42), New(42)
	defer a.Close()
	defer b.Close()
	for _, f := range []*Fabric{a, b} {
		f.SetDelay(1, 2, time.Millisecond, time.Second)
		f.SetLoss(1, 2, 0.5)
	}
	for i := range 100 {
		da, la := a.draw(1, 2)
		db, lb := b.draw(1, 2)
		if da != db || la != lb {
			t.Fatalf("draw %d differs: %v/%v vs %v/%v", i, da, la, db, lb)
		}
	}
}
