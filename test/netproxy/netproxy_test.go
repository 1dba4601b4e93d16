package netproxy

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go io.Copy(c, c)
		}
	}()
	return ln.Addr().String()
}

func roundTrip(c net.Conn, msg string, wait time.Duration) (string, error) {
	c.SetDeadline(time.Now().Add(wait))
	if _, err := c.Write([]byte(msg + "\n")); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

func TestProxyForwardsHoldsAndRefuses(t *testing.T) {
	p, err := New(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := roundTrip(c, "halo", 2*time.Second); err != nil || got != "halo\n" {
		t.Fatalf("forwarded echo = %q, %v", got, err)
	}

	p.HoldDownstream(true)
	if got, err := roundTrip(c, "tahan", 200*time.Millisecond); err == nil {
		t.Fatalf("held downstream still delivered %q", got)
	}
	p.HoldDownstream(false)
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if got, err := bufio.NewReader(c).ReadString('\n'); err != nil || got != "tahan\n" {
		t.Fatalf("after release got %q, %v; want the held reply", got, err)
	}

	p.Refuse(true)
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("open connection survived Refuse(true)")
	}
	c2, err := net.Dial("tcp", p.Addr())
	if err == nil {
		c2.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c2.Read(make([]byte, 1)); err == nil {
			t.Fatal("refusing proxy forwarded a new connection")
		}
		c2.Close()
	}
	p.Refuse(false)
	c3, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if got, err := roundTrip(c3, "lagi", 2*time.Second); err != nil || got != "lagi\n" {
		t.Fatalf("after Refuse(false) echo = %q, %v", got, err)
	}
	if n := p.Accepted(); n != 2 {
		t.Errorf("Accepted = %d, want 2", n)
	}
}
