package pdu

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// Message is a whole SMS: one part, or a reassembled concatenated set.
type Message struct {
	From      Address
	Timestamp time.Time // the SCTS of part 1 if it arrived, else the earliest SCTS of the parts that did
	SMSC      Address
	Alphabet  Alphabet
	Text      string // parts joined in Seq order; for an incomplete set, the parts that arrived, with " … " where parts are missing (also before or after them)
	Parts     int    // Total from the header (1 for single)
	Missing   []int  // seq numbers that never arrived (empty when complete)
	Tags      []int  // caller tags (e.g. SIM storage indexes) of EVERY part added, duplicates included, so all can be deleted
}

// Complete reports whether every part arrived.
func (m *Message) Complete() bool {
	return m != nil && len(m.Missing) == 0
}

// gap marks where parts of an incomplete message are missing, so that a reader sees text was lost.
const gap = "…"

// setKey identifies a concatenated set. The sender is part of it because two phones pick their
// references independently and often collide on small 8-bit counters.
type setKey struct {
	from  string
	ref   uint16
	total int
	ref16 bool
}

type partSet struct {
	key   setKey
	first time.Time // when the first part arrived, by the assembler's clock
	parts map[int]*Deliver
	tags  []int
}

// Assembler reassembles concatenated parts. Key: (From.Number, Ref, Total, Ref16). Duplicate parts
// (same key and Seq) are ignored except that their tag is recorded.
//
// An Assembler is not safe for concurrent use: it belongs to the one goroutine that reads the
// modem, which calls Add for each message read and Expire on a timer.
//
// A duplicate that arrives after its set was completed and returned starts a new set, which
// Expire later hands on as an incomplete message: the assembler keeps no memory of finished sets,
// and a repeated report is safer than a lost one.
type Assembler struct {
	timeout time.Duration
	now     func() time.Time
	sets    map[setKey]*partSet
}

// NewAssembler returns an assembler that gives up on a set timeout after its first part arrived,
// reading the time from now (time.Now if nil).
func NewAssembler(timeout time.Duration, now func() time.Time) *Assembler {
	if now == nil {
		now = time.Now
	}
	return &Assembler{timeout: timeout, now: now, sets: make(map[setKey]*partSet)}
}

// Add takes a decoded part and the caller's tag; it returns the whole message when the set is
// complete (or immediately for a single-part message), else nil. A part whose concatenation
// header is impossible (Seq outside 1..Total) is handed on as a single-part message rather than
// held for parts that cannot come. A nil part is ignored.
func (a *Assembler) Add(d *Deliver, tag int) *Message {
	if d == nil {
		return nil
	}
	c := d.Concat
	if c == nil || c.Total <= 1 || c.Seq < 1 || c.Seq > c.Total {
		return &Message{
			From: d.From, Timestamp: d.Timestamp, SMSC: d.SMSC, Alphabet: d.Alphabet,
			Text: d.Text, Parts: 1, Tags: []int{tag},
		}
	}
	k := setKey{from: d.From.Number, ref: c.Ref, total: c.Total, ref16: c.Ref16}
	s := a.sets[k]
	if s == nil {
		s = &partSet{key: k, first: a.now(), parts: make(map[int]*Deliver, c.Total)}
		a.sets[k] = s
	}
	s.tags = append(s.tags, tag)
	if _, dup := s.parts[c.Seq]; dup {
		return nil
	}
	s.parts[c.Seq] = d
	if len(s.parts) < c.Total {
		return nil
	}
	delete(a.sets, k)
	return s.message()
}

// Expire returns the sets whose first part arrived more than timeout ago, as incomplete
// messages (Missing set), oldest first, and forgets them.
func (a *Assembler) Expire() []*Message {
	now := a.now()
	var old []*partSet
	for k, s := range a.sets {
		if now.Sub(s.first) > a.timeout {
			old = append(old, s)
			delete(a.sets, k)
		}
	}
	slices.SortFunc(old, func(x, y *partSet) int {
		if c := x.first.Compare(y.first); c != 0 {
			return c
		}
		return cmp.Or(strings.Compare(x.key.from, y.key.from), cmp.Compare(x.key.ref, y.key.ref))
	})
	out := make([]*Message, len(old))
	for i, s := range old {
		out[i] = s.message()
	}
	return out
}

// Pending reports how many incomplete sets are held.
func (a *Assembler) Pending() int {
	return len(a.sets)
}

// message builds the message from the parts that arrived.
func (s *partSet) message() *Message {
	ref := s.parts[1]
	var missing []int
	var b strings.Builder
	lost, wrote := false, false
	for seq := 1; seq <= s.key.total; seq++ {
		p, ok := s.parts[seq]
		if !ok {
			missing = append(missing, seq)
			lost = true
			continue
		}
		if ref == nil {
			ref = p // the lowest part that arrived speaks for the message
		}
		if lost {
			if wrote {
				b.WriteString(" " + gap + " ")
			} else {
				b.WriteString(gap + " ")
			}
			lost = false
		}
		b.WriteString(p.Text)
		wrote = true
	}
	if lost {
		b.WriteString(" " + gap)
	}
	ts := ref.Timestamp
	if _, ok := s.parts[1]; !ok {
		for _, p := range s.parts {
			if p.Timestamp.Before(ts) {
				ts = p.Timestamp
			}
		}
	}
	return &Message{
		From: ref.From, Timestamp: ts, SMSC: ref.SMSC, Alphabet: ref.Alphabet,
		Text: b.String(), Parts: s.key.total, Missing: missing, Tags: s.tags,
	}
}
