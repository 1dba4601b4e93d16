package ingest

import (
	"context"
	"sync"

	"github.com/kentongan/kentongan/hub"
)

// feedBuffer is how many events a subscriber may fall behind before it is dropped. A dashboard
// reading at human pace keeps up with hundreds a second; one that does not is better told to
// reload than left with a silently partial picture.
const feedBuffer = 256

// feed fans changes out to subscribers (the dashboard's server-sent events). Publishing never
// blocks ingest: a subscriber whose buffer is full has its channel closed instead.
type feed struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
}

type subscriber struct {
	ch   chan hub.FeedEvent
	once sync.Once
}

func (s *subscriber) close() { s.once.Do(func() { close(s.ch) }) }

func newFeed() *feed { return &feed{subs: map[*subscriber]struct{}{}} }

// Subscribe implements hub.EventFeed.
func (f *feed) Subscribe(ctx context.Context) <-chan hub.FeedEvent {
	sub := &subscriber{ch: make(chan hub.FeedEvent, feedBuffer)}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		sub.close()
		return sub.ch
	}
	f.subs[sub] = struct{}{}
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.drop(sub)
	}()
	return sub.ch
}

func (f *feed) drop(sub *subscriber) {
	f.mu.Lock()
	delete(f.subs, sub)
	f.mu.Unlock()
	sub.close()
}

// publish sends e to every subscriber without waiting.
func (f *feed) publish(e hub.FeedEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for sub := range f.subs {
		select {
		case sub.ch <- e:
		default:
			delete(f.subs, sub)
			sub.close()
		}
	}
}

// subscribers counts current subscribers.
func (f *feed) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

// close ends every subscription; later subscriptions get a closed channel.
func (f *feed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for sub := range f.subs {
		delete(f.subs, sub)
		sub.close()
	}
}
