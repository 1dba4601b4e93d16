package account

import (
	"fmt"
	"sync"
	"time"

	"github.com/kentongan/kentongan/hub"
)

// LimitError is the cause inside a too_many *hub.Error: how long until another attempt will be
// considered, for the HTTP Retry-After header.
type LimitError struct {
	Key        string // "user:siti" or "ip:10.0.0.7", for the log
	RetryAfter time.Duration
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s: too many failed logins; retry in %s", e.Key, e.RetryAfter.Round(time.Second))
}

// Limits configure the login rate limit.
type Limits struct {
	// PerUser failed logins for one user name within Window lock that name until the oldest
	// failure leaves the window; default 5.
	PerUser int
	// PerIP failed logins from one address within Window lock that address; default 20. It is
	// higher than PerUser because one workstation, or a NAT in front of a 112 centre, serves
	// several operators, and it is what stops one address from trying many names.
	PerIP  int
	Window time.Duration // default 15 minutes
}

func (l *Limits) fill() {
	if l.PerUser <= 0 {
		l.PerUser = 5
	}
	if l.PerIP <= 0 {
		l.PerIP = 20
	}
	if l.Window <= 0 {
		l.Window = 15 * time.Minute
	}
}

// maxLimiterKeys bounds the limiter's memory against a flood of made-up names or addresses.
// Beyond it the keys whose failures are all outside the window are dropped first, then the
// limiter stops remembering new keys: an attacker can then go unthrottled for new names, but
// every name still costs a bcrypt comparison, and the hub keeps running.
const maxLimiterKeys = 100_000

// limiter counts failed logins per key in a sliding window. It lives in memory: after a
// restart an attacker gets a fresh allowance, which costs them a restart they cannot cause.
type limiter struct {
	mu       sync.Mutex
	limits   Limits
	clock    hub.Clock
	failures map[string][]time.Time // oldest first, only those inside the window
}

func newLimiter(l Limits, clock hub.Clock) *limiter {
	l.fill()
	return &limiter{limits: l, clock: clock, failures: map[string][]time.Time{}}
}

func userKey(name string) string { return "user:" + name }
func ipKey(ip string) string     { return "ip:" + ip }

// check returns a *LimitError if either key is over its limit.
func (l *limiter) check(user, ip string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	var worst *LimitError
	for _, k := range []struct {
		key   string
		limit int
	}{{userKey(user), l.limits.PerUser}, {ipKey(ip), l.limits.PerIP}} {
		fs := l.recent(k.key, now)
		if len(fs) < k.limit {
			continue
		}
		// Allowed again when enough failures have left the window to drop below the limit.
		wait := fs[len(fs)-k.limit].Add(l.limits.Window).Sub(now)
		if worst == nil || wait > worst.RetryAfter {
			worst = &LimitError{Key: k.key, RetryAfter: wait}
		}
	}
	if worst == nil {
		return nil
	}
	return worst
}

// fail records a failed login against both keys.
func (l *limiter) fail(user, ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clock.Now()
	for _, key := range []string{userKey(user), ipKey(ip)} {
		fs := l.recent(key, now)
		if fs == nil && len(l.failures) >= maxLimiterKeys {
			l.prune(now)
			if len(l.failures) >= maxLimiterKeys {
				continue
			}
		}
		l.failures[key] = append(fs, now)
	}
}

// reset forgets a user name's failures after a successful login. The address's are kept, so
// that one good password does not reopen an address that was trying others.
func (l *limiter) reset(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, userKey(user))
}

// recent returns key's failures inside the window, dropping older ones.
func (l *limiter) recent(key string, now time.Time) []time.Time {
	fs := l.failures[key]
	i := 0
	for i < len(fs) && !fs[i].Add(l.limits.Window).After(now) {
		i++
	}
	if i == len(fs) {
		delete(l.failures, key)
		return nil
	}
	fs = fs[i:]
	l.failures[key] = fs
	return fs
}

func (l *limiter) prune(now time.Time) {
	for key := range l.failures {
		l.recent(key, now)
	}
}
