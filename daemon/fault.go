package daemon

import (
	"maps"
	"slices"
	"sync"
)

// faultSet holds what the kiosk has found wrong with its own hardware at run time: a stuck or
// chattering button, a line that stopped answering. Each fault is kept under a key so that
// whoever set it can clear it, and so that a fault seen at every edge is reported once. The zero
// value is ready to use.
type faultSet struct {
	mu sync.Mutex
	m  map[string]string
}

// put records the fault text under key, or clears it when text is empty, and reports whether
// that changed anything.
func (f *faultSet) put(key, text string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	old, had := f.m[key]
	if text == "" {
		delete(f.m, key)
		return had
	}
	if had && old == text {
		return false
	}
	if f.m == nil {
		f.m = make(map[string]string)
	}
	f.m[key] = text
	return true
}

// list returns the faults' texts ordered by key, so that a heartbeat says the same thing the
// same way each time.
func (f *faultSet) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, k := range slices.Sorted(maps.Keys(f.m)) {
		out = append(out, f.m[k])
	}
	return out
}

// setFault records (text != "") or clears (text == "") the hardware fault under key. A change
// shows on the LEDs and goes to the hub at once in a heartbeat, rather than at the next one.
func (d *Daemon) setFault(key, text string) {
	if !d.faults.put(key, text) {
		return
	}
	kick(d.ledKick)
	kick(d.pingKick)
}
