// Package poll waits in tests for a condition that another goroutine, process or machine makes
// true, failing with what was awaited when it does not come. Deadlines are generous because CI
// machines are slow and loaded: a deadline only matters when something is broken, and the
// benchmarks, not the tests, measure speed.
package poll

import (
	"testing"
	"time"
)

// Interval is how often a condition is checked.
const Interval = 5 * time.Millisecond

// Until checks cond every Interval until it reports true, and fails tb once timeout has passed,
// naming what it waited for and the detail cond last gave.
func Until(tb testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, detail := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			if detail != "" {
				tb.Fatalf("timed out after %v waiting for %s (last: %s)", timeout, what, detail)
			}
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(Interval)
	}
}

// True is Until for a condition with no detail to report.
func True(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	Until(tb, timeout, what, func() (bool, string) { return cond(), "" })
}
