package fleet

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrLoad reports a press pattern that cannot be read or run.
var ErrLoad = errors.New("invalid press pattern")

// Load is a press pattern: a steady rate per kiosk, or a burst of BurstKiosks kiosks each
// pressing once within BurstWindow.
type Load struct {
	Rate        float64 // presses per second per kiosk; 0 for none
	BurstKiosks int
	BurstWindow time.Duration
	// SMSShare is the fraction of reports that come by SMS rather than a button, 0..1.
	SMSShare float64
	Seed     uint64
}

// ParseRate reads a per-kiosk rate such as "0.1/s", "6/m" or "2/h".
func ParseRate(s string) (float64, error) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		unit = "s"
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%w: rate %q: want a number per s, m or h, such as 0.1/s", ErrLoad, s)
	}
	switch unit {
	case "s":
		return v, nil
	case "m":
		return v / 60, nil
	case "h":
		return v / 3600, nil
	}
	return 0, fmt.Errorf("%w: rate %q: unit must be s, m or h", ErrLoad, s)
}

// ParseBurst reads "K:S": K kiosks each press once within S seconds (or a duration, "500ms").
func ParseBurst(s string) (kiosks int, window time.Duration, err error) {
	ks, ws, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, fmt.Errorf("%w: burst %q: want K:S, such as 500:60", ErrLoad, s)
	}
	kiosks, err = strconv.Atoi(ks)
	if err != nil || kiosks < 1 {
		return 0, 0, fmt.Errorf("%w: burst %q: K must be a positive whole number", ErrLoad, s)
	}
	if secs, err := strconv.ParseFloat(ws, 64); err == nil {
		window = time.Duration(secs * float64(time.Second))
	} else if window, err = time.ParseDuration(ws); err != nil {
		return 0, 0, fmt.Errorf("%w: burst %q: S must be seconds or a duration", ErrLoad, s)
	}
	if window < 0 {
		return 0, 0, fmt.Errorf("%w: burst %q: negative window", ErrLoad, s)
	}
	return kiosks, window, nil
}

// RunLoad presses buttons and sends SMS reports by l until ctx ends (a steady rate) or the
// burst is over, whichever is first.
func (f *Fleet) RunLoad(ctx context.Context, l Load) error {
	switch {
	case l.Rate < 0 || l.SMSShare < 0 || l.SMSShare > 1:
		return fmt.Errorf("%w: rate %v, sms share %v", ErrLoad, l.Rate, l.SMSShare)
	case l.BurstKiosks > len(f.ks):
		return fmt.Errorf("%w: a burst of %d kiosks in a fleet of %d", ErrLoad, l.BurstKiosks, len(f.ks))
	case l.BurstKiosks > 0 && l.Rate > 0:
		return fmt.Errorf("%w: a rate and a burst at once", ErrLoad)
	}
	rnd := rand.New(rand.NewPCG(l.Seed, l.Seed+1))
	source := func() Source {
		if rnd.Float64() < l.SMSShare {
			return SMS
		}
		return Button
	}
	if l.BurstKiosks > 0 {
		return f.burst(ctx, l, rnd, source)
	}
	if l.Rate == 0 {
		<-ctx.Done()
		return nil
	}
	total := l.Rate * float64(len(f.ks))
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	done := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		due := int(time.Since(start).Seconds() * total)
		for ; done < due; done++ {
			if _, err := f.Press(rnd.IntN(len(f.ks)), source()); err != nil {
				return err
			}
		}
	}
}

func (f *Fleet) burst(ctx context.Context, l Load, rnd *rand.Rand, source func() Source) error {
	kiosks := rnd.Perm(len(f.ks))[:l.BurstKiosks]
	at := make([]time.Duration, len(kiosks))
	for i := range at {
		at[i] = time.Duration(rnd.Int64N(int64(l.BurstWindow) + 1))
	}
	slices.Sort(at)
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i, k := range kiosks {
		if wait := at[i] - time.Since(start); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-timer.C:
			}
		}
		if _, err := f.Press(k, source()); err != nil {
			return err
		}
	}
	return nil
}
