package gpiocdev

import (
	"errors"
	"time"
)

// ErrUnsupported is returned by Open off Linux, where there is no GPIO character device.
var ErrUnsupported = errors.New("gpiocdev: the GPIO character device exists only on Linux")

// CheckInterval is how often an input waiting for an edge checks that its chip is still there,
// unless WithCheckInterval says otherwise. A vanished chip is a fault to show, not an emergency:
// a second is quick enough and costs one ioctl per input per second.
const CheckInterval = time.Second

// maxEventAge bounds how old a kernel timestamp may look before it is taken to be on another
// clock (kernels before 5.7 stamped events with CLOCK_REALTIME). Edges are read as they arrive, so
// a real event is microseconds old.
const maxEventAge = time.Minute

// Option configures Open.
type Option func(*config)

type config struct {
	check time.Duration
}

// WithCheckInterval sets how often a waiting input checks that its chip is still there
// (CheckInterval by default; non-positive values keep the default).
func WithCheckInterval(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.check = d
		}
	}
}

// eventTime puts a kernel edge timestamp on the process's clock. ts is the event's timestamp on
// CLOCK_MONOTONIC, mono that clock read just now, and now time.Now() read at the same moment.
// Converting, rather than asking the kernel for CLOCK_REALTIME stamps, keeps Go's monotonic
// reading in the result, so durations between edges and time.Since stay right when NTP steps the
// wall clock (a kiosk's clock is often wrong until its modem or the network has set it).
func eventTime(now time.Time, mono, ts time.Duration) time.Time {
	age := mono - ts
	if age < 0 || age > maxEventAge {
		return now
	}
	return now.Add(-age)
}
