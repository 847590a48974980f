// Package faultnet puts a controllable proxy on every directed link between
// the nodes of a test cluster, so that tests can partition the cluster (one
// way or both), delay its messages, or lose them, over real TCP.
//
// Node i reaches node j through the proxy of link (i, j): node i's config
// lists that proxy's address as node j's peer address. Bytes flow both ways
// on a connection, so a direction is a pair (from, to) of nodes, whatever
// node dialled: blocking (i, j) stalls i's bytes to j on the connections i
// dialled and on those j dialled.
//
// Faults act on whole TCP streams the way a real network looks to the node:
// a blocked direction stops delivering (the sender's RPCs time out), and
// when it heals, every connection that stalled is reset, as the kernel would
// after its retransmissions gave up; a lost message resets the connection
// it was on; delay holds each chunk back without reordering a stream.
package faultnet

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dlock-raft/dlock/internal/freeport"
)

// Fabric is the set of links of one cluster. Its methods are safe for
// concurrent use.
type Fabric struct {
	mu     sync.Mutex
	rng    *rand.Rand
	dirs   map[[2]int]*direction
	links  []*link
	closed bool
	wg     sync.WaitGroup
}

// direction is the fault state of the bytes one node sends another.
type direction struct {
	blocked bool
	delay   time.Duration
	jitter  time.Duration
	loss    float64
	// changed is closed and replaced when blocked goes false, waking the
	// pumps stalled on this direction.
	changed chan struct{}
}

// New returns an empty fabric whose random choices (jitter, loss) are
// drawn from seed.
func New(seed uint64) *Fabric {
	return &Fabric{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), dirs: map[[2]int]*direction{}}
}

func (f *Fabric) dir(from, to int) *direction {
	d := f.dirs[[2]int{from, to}]
	if d == nil {
		d = &direction{changed: make(chan struct{})}
		f.dirs[[2]int{from, to}] = d
	}
	return d
}

// Link starts the proxy that carries node from's connections to node to,
// whose peer listener is at target, and returns the address node from must
// dial instead. The proxy listens on host (an IP) on a free port.
func (f *Fabric) Link(from, to int, host, target string) (string, error) {
	// Not a bare listen on :0: the nodes' own addresses were probed and are not listened on yet, and
	// the kernel could hand one of them to this proxy.
	ln, err := freeport.Listen(host)
	if err != nil {
		return "", fmt.Errorf("faultnet: listen for link %d->%d: %w", from, to, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		ln.Close()
		return "", errors.New("faultnet: fabric closed")
	}
	l := &link{f: f, from: from, to: to, target: target, ln: ln, conns: map[*pipe]struct{}{}}
	f.links = append(f.links, l)
	f.dir(from, to)
	f.dir(to, from)
	f.wg.Add(1)
	go l.serve()
	return ln.Addr().String(), nil
}

// Block stops delivery of everything node from sends to node to.
func (f *Fabric) Block(from, to int) {
	f.mu.Lock()
	f.dir(from, to).blocked = true
	f.mu.Unlock()
}

// Isolate blocks both directions between node and every other node in
// others.
func (f *Fabric) Isolate(node int, others ...int) {
	for _, o := range others {
		if o != node {
			f.Block(node, o)
			f.Block(o, node)
		}
	}
}

// SetDelay holds everything node from sends to node to back by delay plus
// a random part up to jitter, keeping each stream in order.
func (f *Fabric) SetDelay(from, to int, delay, jitter time.Duration) {
	f.mu.Lock()
	d := f.dir(from, to)
	d.delay, d.jitter = delay, jitter
	f.mu.Unlock()
}

// SetLoss makes each chunk node from sends to node to lost with
// probability p, resetting the connection it was on.
func (f *Fabric) SetLoss(from, to int, p float64) {
	f.mu.Lock()
	f.dir(from, to).loss = p
	f.mu.Unlock()
}

// Heal lifts every fault: blocked directions deliver again (their stalled
// connections are reset), and delay and loss end.
func (f *Fabric) Heal() {
	f.mu.Lock()
	var stalled []*pipe
	for _, d := range f.dirs {
		if d.blocked {
			d.blocked = false
			close(d.changed)
			d.changed = make(chan struct{})
		}
		d.delay, d.jitter, d.loss = 0, 0, 0
	}
	for _, l := range f.links {
		for p := range l.conns {
			if p.stalled {
				stalled = append(stalled, p)
			}
		}
	}
	f.mu.Unlock()
	for _, p := range stalled {
		p.reset()
	}
}

// Close stops every proxy and closes every connection through them.
func (f *Fabric) Close() {
	f.mu.Lock()
	f.closed = true
	links := f.links
	var pipes []*pipe
	for _, l := range links {
		l.ln.Close()
		for p := range l.conns {
			pipes = append(pipes, p)
		}
	}
	for _, d := range f.dirs {
		if d.blocked {
			d.blocked = false
			close(d.changed)
			d.changed = make(chan struct{})
		}
	}
	f.mu.Unlock()
	for _, p := range pipes {
		p.reset()
	}
	f.wg.Wait()
}

// link is the proxy of one directed link.
type link struct {
	f        *Fabric
	from, to int
	target   string
	ln       net.Listener
	conns    map[*pipe]struct{} // guarded by f.mu
}

func (l *link) serve() {
	defer l.f.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", l.target, 5*time.Second)
		if err != nil {
			// The target is down: the dialler sees its connection refused
			// as it would without the proxy.
			resetConn(c)
			continue
		}
		p := &pipe{l: l, a: c, b: up}
		l.f.mu.Lock()
		if l.f.closed {
			l.f.mu.Unlock()
			p.reset()
			return
		}
		l.conns[p] = struct{}{}
		l.f.mu.Unlock()
		l.f.wg.Add(2)
		go p.pump(c, up, l.from, l.to)
		go p.pump(up, c, l.to, l.from)
	}
}

// pipe is one proxied connection: a is the dialler's side, b the target's.
type pipe struct {
	l       *link
	a, b    net.Conn
	once    sync.Once
	halves  atomic.Int32 // directions that ended cleanly
	stalled bool         // guarded by f.mu: a pump waited on a blocked direction
}

func (p *pipe) reset() {
	p.once.Do(func() {
		resetConn(p.a)
		resetConn(p.b)
		p.l.f.mu.Lock()
		delete(p.l.conns, p)
		p.l.f.mu.Unlock()
	})
}

// resetConn closes c with an RST rather than a FIN, as a failed network
// path ends a connection.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

type chunk struct {
	data []byte
	due  time.Time
}

// pump copies src to dst, the bytes node from sends node to, applying that
// direction's faults. A reader and a writer goroutine share a queue so that
// delay holds chunks back without limiting throughput to one chunk per
// delay.
func (p *pipe) pump(src, dst net.Conn, from, to int) {
	defer p.l.f.wg.Done()
	q := make(chan chunk, 256)
	writerDone := make(chan struct{})
	writeFailed := false
	go func() {
		defer close(writerDone)
		for c := range q {
			if wait := time.Until(c.due); wait > 0 {
				time.Sleep(wait)
			}
			if _, err := dst.Write(c.data); err != nil {
				writeFailed = true
				p.reset()
				for range q {
				}
				return
			}
		}
	}()
	eof := p.copy(src, from, to, q)
	close(q)
	<-writerDone
	if !eof || writeFailed {
		p.reset()
		return
	}
	// Half-close: pass the FIN on once everything before it is written; the
	// connection ends when both directions have.
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	if p.halves.Add(1) == 2 {
		p.reset()
	}
}

// copy reads src into q until src ends (true on a clean EOF) or a fault
// ends the connection (false).
func (p *pipe) copy(src net.Conn, from, to int, q chan<- chunk) bool {
	var lastDue time.Time
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitDeliverable(from, to) {
				return false
			}
			delay, lost := p.l.f.draw(from, to)
			if lost {
				return false
			}
			due := time.Now().Add(delay)
			if due.Before(lastDue) {
				due = lastDue // a stream never reorders
			}
			lastDue = due
			q <- chunk{data: append([]byte(nil), buf[:n]...), due: due}
		}
		if err != nil {
			return errors.Is(err, io.EOF)
		}
	}
}

// waitDeliverable blocks while the direction is blocked and reports whether
// the connection may carry on. A connection that stalled never carries on:
// Heal resets it.
func (p *pipe) waitDeliverable(from, to int) bool {
	f := p.l.f
	f.mu.Lock()
	d := f.dir(from, to)
	if !d.blocked {
		f.mu.Unlock()
		return true
	}
	p.stalled = true
	ch := d.changed
	f.mu.Unlock()
	<-ch
	return false
}

// draw decides a chunk's delay and whether it is lost.
func (f *Fabric) draw(from, to int) (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.dir(from, to)
	if d.loss > 0 && f.rng.Float64() < d.loss {
		return 0, true
	}
	delay := d.delay
	if d.jitter > 0 {
		delay += time.Duration(f.rng.Int64N(int64(d.jitter)))
	}
	return delay, false
}
