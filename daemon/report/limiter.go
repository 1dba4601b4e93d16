package report

import (
	"container/list"
	"sync"
	"time"
)

// MaxSenders bounds the senders a Limiter remembers at once. A flood of distinct senders (a
// spammer rotating numbers) evicts the least recently heard; an evicted sender starts again with
// a full bucket, which errs on the side of hearing a report.
const MaxSenders = 10000

// maxWindow caps burst*interval.
const maxWindow = time.Duration(1 << 61)

// Limiter limits how often each sender is heard, with a token bucket per sender: a sender may send
// burst texts at once, and one more every interval after that. It is safe for concurrent use.
//
// Memory is bounded: a sender whose bucket has refilled is forgotten, which changes nothing for
// it, and at most MaxSenders are remembered.
type Limiter struct {
	burst int
	every time.Duration
	now   func() time.Time

	mu      sync.Mutex
	senders map[string]*list.Element // of *bucket
	lru     *list.List               // most recently heard at the front
}

// bucket is one sender's state as a generic cell rate algorithm keeps it: tat (theoretical
// arrival time) is when the bucket will be full again. A sender is allowed while tat is at most
// (burst-1) intervals ahead of now.
type bucket struct {
	sender string
	tat    time.Time
}

// NewLimiter returns a Limiter. A burst below 1 is taken as 1, so that every sender is heard at
// least once; an interval of zero or less disables the limit, and burst intervals are capped at
// about 70 years. now is the clock, time.Now if nil.
func NewLimiter(burst int, every time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	burst = max(burst, 1)
	// Beyond decades the limit means the same, and keeping burst*every far from overflow keeps
	// the arithmetic on times simple.
	every = min(every, maxWindow/time.Duration(burst))
	return &Limiter{
		burst:   burst,
		every:   every,
		now:     now,
		senders: make(map[string]*list.Element),
		lru:     list.New(),
	}
}

// Allow reports whether sender may be heard now, and if so takes a token from its bucket. The
// sender is normalised first, so "0812..." and "+62812..." share a bucket.
func (l *Limiter) Allow(sender string) bool {
	if l.every <= 0 {
		return true
	}
	if n, err := NormalizeNumber(sender); err == nil {
		sender = n
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forgetIdle(now)

	var b *bucket
	if e, ok := l.senders[sender]; ok {
		l.lru.MoveToFront(e)
		b = e.Value.(*bucket)
	} else {
		if l.lru.Len() >= MaxSenders {
			l.remove(l.lru.Back())
		}
		b = &bucket{sender: sender, tat: now}
		l.senders[sender] = l.lru.PushFront(b)
	}

	window := time.Duration(l.burst) * l.every
	if b.tat.Sub(now) > window {
		// Only a clock that went back puts tat this far ahead; treat the bucket as just
		// emptied rather than lock the sender out for as long as the clock jumped.
		b.tat = now.Add(window)
	}
	if b.tat.Before(now) {
		b.tat = now
	}
	if b.tat.Sub(now) > window-l.every {
		return false
	}
	b.tat = b.tat.Add(l.every)
	return true
}

// Len is how many senders the Limiter remembers.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// forgetIdle drops, from the least recently heard, senders whose buckets are full again.
func (l *Limiter) forgetIdle(now time.Time) {
	for e := l.lru.Back(); e != nil; e = l.lru.Back() {
		if b := e.Value.(*bucket); b.tat.After(now) {
			return
		}
		l.remove(e)
	}
}

func (l *Limiter) remove(e *list.Element) {
	l.lru.Remove(e)
	delete(l.senders, e.Value.(*bucket).sender)
}
