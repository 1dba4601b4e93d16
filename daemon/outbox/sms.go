package outbox

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SMS is a text the kiosk's modem is to send: a reply the hub asked for (sms_send), or one the
// kiosk makes itself (help, instructions). It is stored before it is sent, like an incident, so
// that a power cut or a modem that is away for hours does not lose it, and it is kept after it is
// sent so that the same command repeated by the hub is not sent twice.
type SMS struct {
	ID        string    `json:"id"` // the command ID: the same reply always has the same ID
	To        string    `json:"to"`
	Text      string    `json:"text"`
	Ticket    string    `json:"ticket,omitempty"`
	QueuedAt  time.Time `json:"queued_at"`
	Attempts  int       `json:"attempts,omitempty"`
	LastTryAt time.Time `json:"last_try_at,omitzero"`
	LastError string    `json:"last_error,omitempty"`
	SentAt    time.Time `json:"sent_at,omitzero"`
	// Failed: given up on (the number cannot receive SMS); kept for the status page.
	Failed bool `json:"failed,omitempty"`
}

// Done reports whether the SMS needs no more attempts.
func (m SMS) Done() bool { return !m.SentAt.IsZero() || m.Failed }

// SMSRetention is how long a sent or failed SMS is remembered, so that the hub repeating the
// command (it does on every reconnect within a day) does not send it again.
const SMSRetention = 7 * 24 * time.Hour

// QueueSMS stores an SMS to send and returns once it is on disk. It reports false, and changes
// nothing, when an SMS with the same ID is already queued or was sent.
func (s *Store) QueueSMS(m SMS) (added bool, err error) {
	if m.ID == "" {
		return false, errors.New("outbox queue sms: no id")
	}
	v, err := json.Marshal(m)
	if err != nil {
		return false, fmt.Errorf("outbox queue sms %s: %w", m.ID, err)
	}
	err = s.update("queue sms "+m.ID, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSMS)
		if b.Get([]byte(m.ID)) != nil {
			return nil
		}
		added = true
		return b.Put([]byte(m.ID), v)
	})
	return added, err
}

// SMSes returns every stored SMS, oldest queued first.
func (s *Store) SMSes() ([]SMS, error) {
	var out []SMS
	err := s.view("list sms", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSMS).ForEach(func(k, v []byte) error {
			var m SMS
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("sms %s: %w", k, err)
			}
			out = append(out, m)
			return nil
		})
	})
	slices.SortStableFunc(out, func(a, b SMS) int { return a.QueuedAt.Compare(b.QueuedAt) })
	return out, err
}

// SMSDue returns the SMS still to be sent, oldest queued first.
func (s *Store) SMSDue() ([]SMS, error) {
	all, err := s.SMSes()
	return slices.DeleteFunc(all, SMS.Done), err
}

// SMSResult records an attempt to send an SMS: sent when sendErr is nil, else the error, and
// given up on if giveUp.
func (s *Store) SMSResult(id string, now time.Time, sendErr error, giveUp bool) error {
	return s.update("record sms "+id, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSMS)
		v := b.Get([]byte(id))
		if v == nil {
			return fmt.Errorf("no sms %q", id)
		}
		var m SMS
		if err := json.Unmarshal(v, &m); err != nil {
			return err
		}
		m.Attempts++
		m.LastTryAt = now
		if sendErr == nil {
			m.SentAt, m.LastError = now, ""
		} else {
			m.LastError, m.Failed = sendErr.Error(), giveUp
		}
		return putJSON(b, []byte(id), m)
	})
}

// PruneSMS deletes sent and failed SMS older than SMSRetention and returns how many.
func (s *Store) PruneSMS(now time.Time) (int, error) {
	cutoff := now.Add(-SMSRetention)
	var stale [][]byte
	err := s.view("prune sms", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSMS).ForEach(func(k, v []byte) error {
			var m SMS
			if err := json.Unmarshal(v, &m); err != nil ||
				(m.Done() && cmp.Or(m.SentAt, m.LastTryAt).Before(cutoff)) {
				stale = append(stale, bytes.Clone(k))
			}
			return nil
		})
	})
	if err != nil || len(stale) == 0 {
		return 0, err
	}
	err = s.update("prune sms", func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSMS)
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(stale), nil
}
