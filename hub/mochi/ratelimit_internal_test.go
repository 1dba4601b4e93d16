package mochi

import (
	"fmt"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestLimiter(l ConnectLimit) (*connLimiter, *fakeClock) {
	clk := &fakeClock{t: time.Date(2026, 11, 27, 20, 0, 0, 0, time.UTC)}
	cl := &connLimiter{now: clk.now}
	cl.set(l)
	return cl, clk
}

// A flood from one address gets the burst, then the rate; refusals are logged once per
// interval with the count of those not logged.
func TestConnLimiterFlood(t *testing.T) {
	l, clk := newTestLimiter(ConnectLimit{Rate: 10, Burst: 50})
	allowed, logged, suppressed := 0, 0, 0
	for range 1000 { // 1000 connects within one second
		ok, logIt, n := l.allow("203.0.113.7")
		if ok {
			allowed++
		}
		if logIt {
			logged++
			suppressed += n
		}
		clk.advance(time.Millisecond)
	}
	if allowed < 50 || allowed > 50+10+1 {
		t.Errorf("%d of 1000 connects in one second allowed, want the burst of 50 plus about 10", allowed)
	}
	if logged != 1 {
		t.Errorf("%d refusals logged in one second, want 1", logged)
	}
	clk.advance(refusalLogEvery)
	ok, logIt, n := l.allow("203.0.113.7")
	if !ok {
		t.Error("after a quiet spell the address is still refused")
	}
	if ok, logIt, n = l.allow("203.0.113.7"); ok || !logIt {
		// The bucket had refilled to its burst: drain it to see the next logged refusal.
		for ok {
			ok, logIt, n = l.allow("203.0.113.7")
		}
	}
	if !logIt || n != 1000-allowed-1 {
		t.Errorf("next logged refusal: logIt=%v suppressed=%d, want true and %d", logIt, n, 1000-allowed-1)
	}
}

// After a hub restart every kiosk reconnects at once: hundreds of addresses, one connection
// each, and several kiosks behind one NAT address, none of them refused.
func TestConnLimiterRestartStorm(t *testing.T) {
	l, clk := newTestLimiter(ConnectLimit{}) // the defaults
	for i := range 5000 {
		if ok, _, _ := l.allow(fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, i%256)); !ok {
			t.Fatalf("kiosk %d, alone on its address, refused", i)
		}
	}
	for i := range DefaultConnectBurst {
		if ok, _, _ := l.allow("198.51.100.1"); !ok {
			t.Fatalf("kiosk %d behind one NAT address refused, the burst is %d", i, DefaultConnectBurst)
		}
	}
	if ok, _, _ := l.allow("198.51.100.1"); ok {
		t.Error("the NAT address got more than its burst at once")
	}
	clk.advance(time.Second)
	n := 0
	for {
		if ok, _, _ := l.allow("198.51.100.1"); !ok {
			break
		}
		n++
	}
	if n < int(DefaultConnectRate)-1 || n > int(DefaultConnectRate)+1 {
		t.Errorf("%d connections a second later, want the rate %v", n, DefaultConnectRate)
	}
}

func TestConnLimiterOffAndSweep(t *testing.T) {
	l, clk := newTestLimiter(ConnectLimit{Rate: -1})
	for range 10000 {
		if ok, _, _ := l.allow("127.0.0.1"); !ok {
			t.Fatal("refused with the limit off")
		}
	}
	l, clk = newTestLimiter(ConnectLimit{Rate: 100, Burst: 10})
	for i := range 100 {
		l.allow(fmt.Sprintf("192.0.2.%d", i))
	}
	clk.advance(2 * limiterSweepEvery)
	l.allow("192.0.2.200")
	if len(l.buckets) != 1 {
		t.Errorf("%d buckets kept after every address refilled, want 1", len(l.buckets))
	}
}

func TestRemoteHost(t *testing.T) {
	for in, want := range map[string]string{"127.0.0.1:5000": "127.0.0.1", "[::1]:80": "::1", "pipe": "pipe"} {
		if got := remoteHost(in); got != want {
			t.Errorf("remoteHost(%q) = %q, want %q", in, got, want)
		}
	}
}
