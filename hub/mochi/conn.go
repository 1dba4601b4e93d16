package mochi

import (
	"errors"
	"net"
	"os"
	"time"
)

// writeTimeoutListener hands mochi connections whose writes give up after timeout.
//
// mochi v2.7.9 writes to a client while holding that client's lock and sets no write deadline.
// A kiosk that stops reading (a half-open link, a wedged process) fills its socket buffer, the
// write blocks, and with it everything else that takes the lock: publishing to that client,
// which is how the hub's ingest worker sends acks. One stuck kiosk then stalls every kiosk's
// acks until keepalive gives up on it, 1.5 keepalives later. With a deadline the write fails
// instead, the connection is closed, and the kiosk's session keeps its unacknowledged messages
// for when it comes back.
type writeTimeoutListener struct {
	net.Listener
	timeout time.Duration
}

func (l writeTimeoutListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &writeTimeoutConn{Conn: c, timeout: l.timeout}, nil
}

// writeTimeoutConn closes itself when a write times out: part of a packet may have gone out,
// so nothing more can be written on it that the peer could parse.
type writeTimeoutConn struct {
	net.Conn
	timeout time.Duration
}

func (c *writeTimeoutConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(p)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.Conn.Close()
	}
	return n, err
}
