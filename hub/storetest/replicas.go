package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/kentongan/kentongan/hub"
)

// testTwoHandlesIngest: two handles on one database (two hub replicas) ingest the same
// incidents at once, in different batches and orders, as a kiosk's re-sends reaching both
// replicas would. Each incident is exactly one ticket, made once, and every answer for it,
// on either handle, is that ticket; no device is told an error.
func testTwoHandlesIngest(t *testing.T, open Opener) {
	clock := NewClock(epoch)
	handles := []hub.Store{openStore(t, open, clock), openStore(t, open, clock)}
	const incidents, workers, batchSize = 60, 4, 12
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string][]hub.IngestResult{}
	)
	for w := range workers {
		s := handles[w%len(handles)]
		order := rand.New(rand.NewPCG(uint64(w), 7)).Perm(incidents)
		wg.Go(func() {
			for start := 0; start < incidents; start += batchSize {
				var batch []hub.NewTicket
				for _, n := range order[start:min(start+batchSize, incidents)] {
					batch = append(batch, incident("kiosk-1", n))
				}
				res, err := s.Ingest(context.Background(), batch)
				if err != nil {
					t.Errorf("worker %d: ingest: %v", w, err)
					return
				}
				mu.Lock()
				for i, r := range res {
					seen[batch[i].IncidentID] = append(seen[batch[i].IncidentID], r)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	numbers := map[string]string{}
	for id, rs := range seen {
		made := 0
		for _, r := range rs {
			if r.Err != nil {
				t.Fatalf("incident %s: %v, want its ticket", id, r.Err)
			}
			if !r.Existing {
				made++
			}
			if r.Ticket.ID != rs[0].Ticket.ID || r.Ticket.Number != rs[0].Ticket.Number {
				t.Fatalf("incident %s answered with tickets %s and %s", id, rs[0].Ticket.Number, r.Ticket.Number)
			}
		}
		if made != 1 || len(rs) != workers {
			t.Fatalf("incident %s: %d answers, %d of them new; want %d answers, exactly one new", id, len(rs), made, workers)
		}
		if other, dup := numbers[rs[0].Ticket.Number]; dup {
			t.Fatalf("number %s given to incidents %s and %s", rs[0].Ticket.Number, other, id)
		}
		numbers[rs[0].Ticket.Number] = id
	}
	for i, s := range handles {
		if n := countTickets(t, s); n != incidents {
			t.Errorf("handle %d sees %d tickets, want %d", i, n, incidents)
		}
	}
}

// testTwoHandlesChanges: operators on two replicas race to acknowledge one ticket; one wins,
// the rest are conflicts, and the trail has the one change.
func testTwoHandlesChanges(t *testing.T, open Opener) {
	clock := NewClock(epoch)
	handles := []hub.Store{openStore(t, open, clock), openStore(t, open, clock)}
	ctx := context.Background()
	tk := mustTicket(t, ingest(t, handles[0], incident("kiosk-1", 1))[0])
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for i := range 6 {
		wg.Go(func() {
			_, err := handles[i%2].Acknowledge(ctx, tk.ID, fmt.Sprintf("op-%d", i), "")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case hub.ErrorCode(err) != hub.CodeConflict:
				t.Errorf("racing ack: %v, want success or conflict", err)
			}
		})
	}
	wg.Wait()
	got := getTicket(t, handles[1], tk.ID)
	if wins != 1 || got.Version != 2 || countEvents(t, handles[0], tk.ID) != 2 {
		t.Errorf("%d racing acks won, version %d, %d events; want exactly one applied", wins, got.Version, countEvents(t, handles[0], tk.ID))
	}
}

// testEventLogInOrder: the webhook fan-out reads the audit trail as a log, by ID
// (EventsAfter), while replicas write it. A reader that moves its cursor past every event it
// got must, in the end, have got every event: an event committed after a later ID was read
// would be skipped for ever.
func testEventLogInOrder(t *testing.T, open Opener) {
	clock := NewClock(epoch)
	writers := []hub.Store{openStore(t, open, clock), openStore(t, open, clock)}
	reader := openStore(t, open, clock)
	ctx := context.Background()
	const perWriter = 15
	var wg sync.WaitGroup
	for w, s := range writers {
		wg.Go(func() {
			for i := range perWriter {
				res, err := s.Ingest(ctx, []hub.NewTicket{incident(fmt.Sprintf("kiosk-%d", w), w*1000+i)})
				if err != nil || res[0].Err != nil {
					t.Errorf("writer %d: ingest: %v %v", w, err, res[0].Err)
					return
				}
				if _, err := s.Acknowledge(ctx, res[0].Ticket.ID, "op", ""); err != nil {
					t.Errorf("writer %d: acknowledge: %v", w, err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	got := map[int64]bool{}
	var cursor int64
	read := func() {
		evs, err := reader.EventsAfter(ctx, cursor, hub.MaxLimit)
		if err != nil {
			t.Fatalf("events after %d: %v", cursor, err)
		}
		for _, e := range evs {
			got[e.ID] = true
			cursor = e.ID
		}
	}
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		read()
		time.Sleep(time.Millisecond) // a fan-out polls; spinning would only starve the writers
	}
	read()
	all, err := reader.EventsAfter(ctx, 0, hub.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(writers)*perWriter*2 {
		t.Fatalf("%d events, want %d", len(all), len(writers)*perWriter*2)
	}
	for _, e := range all {
		if !got[e.ID] {
			t.Fatalf("event %d (%s of ticket %s) was committed behind the reader's cursor and never read", e.ID, e.Kind, e.TicketID)
		}
	}
}
