package mochi

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// tlsListenerID is the mochi listener ID of the device listener.
const tlsListenerID = "tls"

// handshakeTimeout bounds a TLS handshake, so that a half-open connection does not hold a
// goroutine for ever.
const handshakeTimeout = 15 * time.Second

// tlsListener is the device listener. Unlike mochi's TCP listener with a TLS config, it
// completes the handshake itself before handing the connection to mochi, so that a refused
// certificate is logged and counted here (mochi would only see a failed read).
type tlsListener struct {
	address string
	cfg     *tls.Config
	onFail  func(remote string, err error)
	// writeTimeout bounds each write to a client; see writeTimeoutListener.
	writeTimeout time.Duration

	ln     net.Listener
	mu     sync.Mutex
	closed bool
	// pending are connections still in their handshake, closed with the listener.
	pending map[net.Conn]struct{}
}

var _ listeners.Listener = (*tlsListener)(nil)

func (l *tlsListener) ID() string       { return tlsListenerID }
func (l *tlsListener) Protocol() string { return "tls" }

func (l *tlsListener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.address
}

func (l *tlsListener) Init(*slog.Logger) error {
	ln, err := net.Listen("tcp", l.address)
	if err != nil {
		return err
	}
	l.ln = ln
	l.pending = map[net.Conn]struct{}{}
	return nil
}

func (l *tlsListener) Serve(establish listeners.EstablishFn) {
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			return
		}
		if !l.track(conn) {
			conn.Close()
			return
		}
		go func() {
			tc := tls.Server(&writeTimeoutConn{Conn: conn, timeout: l.writeTimeout}, l.cfg)
			ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
			err := tc.HandshakeContext(ctx)
			cancel()
			if !l.untrack(conn) {
				tc.Close()
				return
			}
			if err != nil {
				l.onFail(conn.RemoteAddr().String(), err)
				tc.Close()
				return
			}
			_ = establish(tlsListenerID, tc) // mochi logs and closes on its own
		}()
	}
}

func (l *tlsListener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.pending[c] = struct{}{}
	return true
}

// untrack reports false if the listener closed meanwhile.
func (l *tlsListener) untrack(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.pending, c)
	return !l.closed
}

func (l *tlsListener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	first := !l.closed
	l.closed = true
	for c := range l.pending {
		c.Close()
	}
	l.mu.Unlock()
	if first {
		closeClients(tlsListenerID)
	}
	if l.ln != nil {
		l.ln.Close()
	}
}
