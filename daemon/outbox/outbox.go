// Package outbox is the kiosk's durable record of incidents: the ones the hub has not yet
// received (pending), and, for a day, what the hub last said about the ones it has (recent).
//
// A resident's report must survive a power cut the moment the kiosk says it has it, so Put returns
// only after the incident is committed and fsynced. Pending incidents are kept until the hub says
// it holds them; nothing, not even a rejection, drops one.
package outbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kentongan/kentongan/mqtt"
)

// FileName is the database file inside the store directory.
const FileName = "outbox.db"

// DefaultRecentRetention is how long an incident's last status is remembered after its last update.
const DefaultRecentRetention = 24 * time.Hour

var (
	bucketPending = []byte("pending")
	bucketRecent  = []byte("recent")
	bucketSMS     = []byte("sms")
)

// Errors returned by a Store.
var (
	// ErrClosed is returned by a Store used after Close.
	ErrClosed = errors.New("outbox: closed")
	// ErrExists is returned by Put for an incident ID already stored. For an SMS read twice from
	// the SIM it means the report is already safe.
	ErrExists = errors.New("incident id already stored")
)

// Entry is a pending incident.
type Entry struct {
	// Incident is the payload as last published; Attempt counts publishes so far (0: never sent).
	Incident   mqtt.Incident `json:"incident"`
	StoredAt   time.Time     `json:"stored_at"`
	LastSentAt time.Time     `json:"last_sent_at,omitzero"`
	// LastError is the hub's reason for the latest rejection, cleared by nothing but receipt.
	LastError  string    `json:"last_error,omitempty"`
	RejectedAt time.Time `json:"rejected_at,omitzero"`
}

// Recent is what the hub last said about an incident it holds.
type Recent struct {
	IncidentID   string         `json:"incident_id"`
	Button       string         `json:"button,omitempty"`
	Category     string         `json:"category,omitempty"`
	Request      string         `json:"request,omitempty"` // set for a request about a ticket, not a report
	OccurredAt   time.Time      `json:"occurred_at"`
	TicketID     string         `json:"ticket_id,omitempty"`
	TicketNumber string         `json:"ticket_number,omitempty"`
	Status       mqtt.AckStatus `json:"status"`
	HubAt        time.Time      `json:"hub_at,omitzero"` // the ack's own time, for ordering late acks
	Updated      time.Time      `json:"updated"`         // device clock when the status was recorded
}

// AckResult says what an ack changed.
type AckResult struct {
	// WasPending: the incident was pending when the ack arrived.
	WasPending bool
	// Received: the incident left the pending set.
	Received bool
	// Rejected: the hub refused it and it stays pending.
	Rejected bool
	// Updated: the recent record changed.
	Updated bool
	// Unknown: the store knows nothing of the incident (a late ack after pruning, or another
	// device's); nothing changed.
	Unknown bool
}

// Option configures Open.
type Option func(*options)

type options struct {
	retention   time.Duration
	lockTimeout time.Duration
}

// WithRecentRetention sets how long recent records are kept after their last update.
func WithRecentRetention(d time.Duration) Option { return func(o *options) { o.retention = d } }

// WithLockTimeout sets how long Open waits for another process to release the file.
func WithLockTimeout(d time.Duration) Option { return func(o *options) { o.lockTimeout = d } }

// Store is an open outbox. It is safe for concurrent use.
type Store struct {
	db        *bolt.DB
	retention time.Duration
}

// Open opens (creating if needed) the outbox in dir.
func Open(dir string, opts ...Option) (*Store, error) {
	o := options{retention: DefaultRecentRetention, lockTimeout: time.Second}
	for _, f := range opts {
		f(&o)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open outbox: %w", err)
	}
	path := filepath.Join(dir, FileName)
	// The lock timeout turns a second daemon on the same directory into an error, not a hang.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.lockTimeout})
	if err != nil {
		return nil, fmt.Errorf("open outbox %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketPending, bucketRecent, bucketSMS} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open outbox %s: create buckets: %w", path, err)
	}
	return &Store{db: db, retention: o.retention}, nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.db.Path() }

// Close releases the file. It is safe to call more than once.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close outbox: %w", err)
	}
	return nil
}

func (s *Store) update(what string, fn func(tx *bolt.Tx) error) error {
	err := s.db.Update(fn)
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		err = ErrClosed
	}
	if err != nil {
		return fmt.Errorf("outbox %s: %w", what, err)
	}
	return nil
}

func (s *Store) view(what string, fn func(tx *bolt.Tx) error) error {
	err := s.db.View(fn)
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		err = ErrClosed
	}
	if err != nil {
		return fmt.Errorf("outbox %s: %w", what, err)
	}
	return nil
}

// Put adds an incident to the pending set and returns once it is on disk. Putting an ID that is
// already pending or recent is an error: IDs are made once per press.
func (s *Store) Put(in mqtt.Incident, now time.Time) error {
	return s.put(Entry{Incident: in, StoredAt: now})
}

// PutSent stores a new incident as Put does, but already counted as published once at now, for a
// caller that publishes it straight after. The first send then costs no second commit, which on
// a kiosk's SD card is a second fsync in the path of the resident's LED. If that publish never
// happens (no connection, a crash), the incident is due again at the next (re)connect and after
// the retry interval, like any other. It returns the incident as it is to be published.
func (s *Store) PutSent(in mqtt.Incident, now time.Time) (mqtt.Incident, error) {
	in.Attempt = 1
	if err := s.put(Entry{Incident: in, StoredAt: now, LastSentAt: now}); err != nil {
		return mqtt.Incident{}, err
	}
	return in, nil
}

func (s *Store) put(e Entry) error {
	id := e.Incident.ID
	if id == "" {
		return errors.New("outbox put: incident has no id")
	}
	v, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("outbox put %s: %w", id, err)
	}
	return s.update("put "+id, func(tx *bolt.Tx) error {
		p, r := tx.Bucket(bucketPending), tx.Bucket(bucketRecent)
		if p.Get([]byte(id)) != nil || r.Get([]byte(id)) != nil {
			return ErrExists
		}
		return p.Put([]byte(id), v)
	})
}

// Pending returns the pending incidents, oldest first: UUIDv7 IDs sort by creation time.
func (s *Store) Pending() ([]Entry, error) {
	var out []Entry
	err := s.view("list pending", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPending).ForEach(func(k, v []byte) error {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("entry %s: %w", k, err)
			}
			out = append(out, e)
			return nil
		})
	})
	return out, err
}

// Len returns the number of pending incidents.
func (s *Store) Len() (int, error) {
	var n int
	err := s.view("count pending", func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketPending).Stats().KeyN
		return nil
	})
	return n, err
}

// Claim marks for publishing every pending incident never sent, or last sent at or before
// sentBefore, and returns them oldest first with Attempt incremented and recorded. Pass now as
// sentBefore to replay everything (on connect), the zero time for only the never-sent ones.
func (s *Store) Claim(now, sentBefore time.Time) ([]mqtt.Incident, error) {
	due := func(e Entry) bool { return e.LastSentAt.IsZero() || !e.LastSentAt.After(sentBefore) }
	// Look before writing: the retry ticker calls this often, and a commit costs an fsync.
	var anyDue bool
	err := s.view("claim", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPending).ForEach(func(k, v []byte) error {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("entry %s: %w", k, err)
			}
			anyDue = anyDue || due(e)
			return nil
		})
	})
	if err != nil || !anyDue {
		return nil, err
	}
	var out []mqtt.Incident
	err = s.update("claim", func(tx *bolt.Tx) error {
		out = nil
		b := tx.Bucket(bucketPending)
		type kv struct{ k, v []byte }
		var changed []kv
		err := b.ForEach(func(k, v []byte) error {
			var e Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("entry %s: %w", k, err)
			}
			if !due(e) {
				return nil
			}
			e.Incident.Attempt++
			e.LastSentAt = now
			nv, err := json.Marshal(e)
			if err != nil {
				return err
			}
			changed = append(changed, kv{bytes.Clone(k), nv})
			out = append(out, e.Incident)
			return nil
		})
		if err != nil {
			return err
		}
		// Written after the walk: bbolt forbids changing a bucket while iterating it.
		for _, c := range changed {
			if err := b.Put(c.k, c.v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// statusRank orders ticket statuses so that a late or repeated "received" cannot undo a later
// status. Statuses of equal rank replace each other by the ack's time.
func statusRank(s mqtt.AckStatus) int {
	switch s {
	case mqtt.AckReceived, mqtt.AckDuplicate:
		return 1
	case mqtt.AckAcknowledged:
		return 2
	case mqtt.AckDispatched:
		return 3
	case mqtt.AckResolved, mqtt.AckClosed, mqtt.AckCancelled:
		return 4
	}
	return 0
}

// StatusRank orders the hub's statuses of a ticket: an answer of a lower rank than one already
// recorded is late and changes nothing. Rejections and unknown statuses are 0.
func StatusRank(s mqtt.AckStatus) int { return statusRank(s) }

// Ack records the hub's answer about an incident. Any status the hub sends for a ticket means it
// holds the incident, so the incident leaves the pending set; a rejection keeps it pending with
// the hub's reason; a status this code does not know changes nothing. Repeated and late acks are
// harmless.
func (s *Store) Ack(a mqtt.Ack, now time.Time) (AckResult, error) {
	var res AckResult
	if a.IncidentID == "" {
		return AckResult{Unknown: true}, nil
	}
	key := []byte(a.IncidentID)
	err := s.update("ack "+a.IncidentID, func(tx *bolt.Tx) error {
		res = AckResult{}
		p, r := tx.Bucket(bucketPending), tx.Bucket(bucketRecent)
		var pending *Entry
		if v := p.Get(key); v != nil {
			pending = new(Entry)
			if err := json.Unmarshal(v, pending); err != nil {
				return fmt.Errorf("entry: %w", err)
			}
			res.WasPending = true
		}
		var rec *Recent
		if v := r.Get(key); v != nil {
			rec = new(Recent)
			if err := json.Unmarshal(v, rec); err != nil {
				return fmt.Errorf("recent: %w", err)
			}
		}
		if pending == nil && rec == nil {
			res.Unknown = true
			return nil
		}

		if a.Status == mqtt.AckRejected {
			if pending == nil {
				return nil // the hub already holds it; a stale rejection means nothing now
			}
			pending.LastError = a.Error
			if pending.LastError == "" {
				pending.LastError = "rejected by hub"
			}
			pending.RejectedAt = now
			res.Rejected = true
			return putJSON(p, key, pending)
		}
		rank := statusRank(a.Status)
		if rank == 0 {
			return nil
		}

		if pending != nil {
			if err := p.Delete(key); err != nil {
				return err
			}
			res.Received = true
			rec = &Recent{
				IncidentID: a.IncidentID,
				Button:     pending.Incident.Button,
				Category:   pending.Incident.Category,
				Request:    pending.Incident.Request,
				OccurredAt: pending.Incident.OccurredAt,
			}
		} else {
			old := statusRank(rec.Status)
			if rank < old || (rank == old && !a.At.IsZero() && a.At.Before(rec.HubAt)) {
				return nil
			}
		}
		rec.Status = a.Status
		if a.TicketID != "" {
			rec.TicketID = a.TicketID
		}
		if a.TicketNumber != "" {
			rec.TicketNumber = a.TicketNumber
		}
		if !a.At.IsZero() {
			rec.HubAt = a.At
		}
		rec.Updated = now
		res.Updated = true
		return putJSON(r, key, rec)
	})
	if err != nil {
		return AckResult{}, err
	}
	return res, nil
}

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, data)
}

// Recent returns the incidents the hub holds and that were updated within the retention period,
// newest incident first.
func (s *Store) Recent(now time.Time) ([]Recent, error) {
	var out []Recent
	cutoff := now.Add(-s.retention)
	err := s.view("list recent", func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecent).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var r Recent
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("recent %s: %w", k, err)
			}
			if r.Updated.Before(cutoff) {
				continue
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// Prune deletes recent records not updated within the retention period and returns how many.
// It writes only when there is something to delete, to spare the SD card.
func (s *Store) Prune(now time.Time) (int, error) {
	cutoff := now.Add(-s.retention)
	var stale [][]byte
	var n int
	err := s.view("prune", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRecent).ForEach(func(k, v []byte) error {
			var r Recent
			// An unreadable record is dropped too: it can only ever be shown as garbage.
			if err := json.Unmarshal(v, &r); err != nil || r.Updated.Before(cutoff) {
				stale = append(stale, bytes.Clone(k))
			}
			return nil
		})
	})
	if err != nil || len(stale) == 0 {
		return 0, err
	}
	err = s.update("prune", func(tx *bolt.Tx) error {
		n = 0
		b := tx.Bucket(bucketRecent)
		for _, k := range stale {
			// An ack may have refreshed the record since the look above.
			var r Recent
			if v := b.Get(k); v == nil || (json.Unmarshal(v, &r) == nil && !r.Updated.Before(cutoff)) {
				continue
			}
			if err := b.Delete(k); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
