// Package netproxy is a TCP proxy that tests put between kiosks and the hub to cut, stall and
// restore the network: refuse new connections, hold one direction of traffic (so that packets
// vanish the way they do on a half-open link), or drop every connection at once.
package netproxy

import (
	"fmt"
	"net"
	"sync"
)

// Proxy forwards TCP connections from its listener to a target address.
type Proxy struct {
	ln net.Listener

	mu         sync.Mutex
	target     string
	refuse     bool
	holdDown   bool
	cond       *sync.Cond
	conns      map[net.Conn]struct{}
	closed     bool
	accepted   int
	wg         sync.WaitGroup
	acceptDone chan struct{}
}

// New listens on 127.0.0.1 at a free port and forwards to target.
func New(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("netproxy: listen: %w", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, acceptDone: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	go p.accept()
	return p, nil
}

// Addr is the proxy's listening address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is the proxy's address as an MQTT broker URL.
func (p *Proxy) URL() string { return "tcp://" + p.Addr() }

// SetTarget changes where new connections go; existing ones are left alone.
func (p *Proxy) SetTarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

// Refuse makes the proxy close new connections at once (as a host whose service is down does)
// and, when cut is true, drops every open connection too.
func (p *Proxy) Refuse(refuse bool) {
	p.mu.Lock()
	p.refuse = refuse
	p.mu.Unlock()
	if refuse {
		p.CutAll()
	}
}

// HoldDownstream stops (true) or resumes (false) traffic from the target back to the client,
// without closing anything: the client's packets still arrive, but no answer comes back.
func (p *Proxy) HoldDownstream(hold bool) {
	p.mu.Lock()
	p.holdDown = hold
	p.cond.Broadcast()
	p.mu.Unlock()
}

// CutAll closes every open connection, both sides.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.cond.Broadcast()
	p.mu.Unlock()
}

// Accepted counts the client connections the proxy has forwarded.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// Close stops the listener and every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	<-p.acceptDone
	p.CutAll()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer close(p.acceptDone)
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refuse, target, closed := p.refuse, p.target, p.closed
		p.mu.Unlock()
		if refuse || closed {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c] = struct{}{}
		p.conns[up] = struct{}{}
		p.accepted++
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(up, c, false)
		go p.pipe(c, up, true)
	}
}

// pipe copies src to dst until either side closes; downstream copies wait while held.
func (p *Proxy) pipe(dst, src net.Conn, downstream bool) {
	defer p.wg.Done()
	defer func() {
		dst.Close()
		src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.cond.Broadcast()
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		if downstream && !p.waitOpen(src) {
			return
		}
		n, err := src.Read(buf)
		if n > 0 {
			if downstream && !p.waitOpen(src) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// waitOpen blocks while downstream traffic is held; false once the connection is gone.
func (p *Proxy) waitOpen(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.holdDown {
		if _, ok := p.conns[c]; !ok || p.closed {
			return false
		}
		p.cond.Wait()
	}
	_, ok := p.conns[c]
	return ok
}
