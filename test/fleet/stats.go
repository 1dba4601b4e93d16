package fleet

import (
	"context"
	"slices"
	"time"
)

// Stats is what the fleet has seen so far.
type Stats struct {
	Kiosks      int   `json:"kiosks"`
	Connected   int   `json:"connected"`
	Incidents   int   `json:"incidents"`
	Acked       int   `json:"acked"`        // received by the hub: a ticket ID came back
	Unacked     int   `json:"unacked"`      // not (yet) received; lost if the run is over
	Duplicated  int   `json:"duplicated"`   // incidents answered with two different ticket IDs
	Resent      int   `json:"resent"`       // publishes after an incident's first
	Rejected    int   `json:"rejected"`     // "rejected" acks
	UnknownAcks int   `json:"unknown_acks"` // acks naming an incident this kiosk never made
	Heartbeats  int64 `json:"heartbeats"`
	Disconnects int64 `json:"disconnects"` // connections lost (not closed by the fleet)
	// Press→received latency over the acked incidents.
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
	Max time.Duration `json:"max_ns"`
	// FirstConnect is when the first kiosk began to connect, LastAck when the last incident
	// was received; zero when there was none.
	FirstConnect time.Time `json:"first_connect"`
	LastAck      time.Time `json:"last_ack"`
}

// Stats returns the counts and the latency quantiles so far.
func (f *Fleet) Stats() Stats {
	f.mu.Lock()
	s := Stats{Kiosks: len(f.ks), Incidents: f.n.incidents, Acked: f.n.acked, Duplicated: f.n.duplicated,
		Resent: f.n.resent, Rejected: f.n.rejected, UnknownAcks: f.n.unknownAcks,
		FirstConnect: f.firstConn, LastAck: f.lastAck}
	lat := slices.Clone(f.latencies)
	f.mu.Unlock()
	s.Unacked = s.Incidents - s.Acked
	s.Connected = int(f.connected.Load())
	s.Heartbeats = f.heartbeats.Load()
	s.Disconnects = f.disconnects.Load()
	slices.Sort(lat)
	s.P50, s.P99 = quantile(lat, 0.50), quantile(lat, 0.99)
	if len(lat) > 0 {
		s.Max = lat[len(lat)-1]
	}
	return s
}

// quantile is the nearest-rank quantile of sorted durations.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Received reports whether the hub has received incident id, and its ticket ID.
func (f *Fleet) Received(id string) (ticket string, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in := f.incidents[id]
	if in == nil || !in.acked {
		return "", false
	}
	return in.ticket, true
}

// IncidentIDs lists every incident the fleet has made.
func (f *Fleet) IncidentIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.incidents))
	for id := range f.incidents {
		out = append(out, id)
	}
	return out
}

// WaitAcked waits until the hub has received every incident made so far, or ctx ends; it
// returns ctx's error then.
func (f *Fleet) WaitAcked(ctx context.Context) error {
	return f.waitFor(ctx, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.n.acked == f.n.incidents
	})
}

// WaitConnected waits until n kiosks are connected at once, or ctx ends.
func (f *Fleet) WaitConnected(ctx context.Context, n int) error {
	return f.waitFor(ctx, func() bool { return int(f.connected.Load()) >= n })
}

func (f *Fleet) waitFor(ctx context.Context, ok func() bool) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if ok() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
