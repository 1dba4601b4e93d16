package modemtest

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/kentongan/kentongan/drivers/modem/pdu"
)

// ErrBadPDU is returned by DeliverPDU for a PDU that cannot even be stored: empty, or with
// characters that would break the modem's line framing.
var ErrBadPDU = errors.New("modemtest: PDU cannot be stored")

// Deliver has the network deliver an SMS from from, split into as many parts as it needs. Each
// part is stored in the lowest free slot and announced with +CMTI (if AT+CNMI asks for it). It
// returns the index of each part, 0 for a part the modem cannot take now (full storage, not
// registered, off or unplugged): the network keeps retrying it, and it is stored, in order, as
// soon as the modem can take it (see Backlog). A part routed directly with +CMT (AT+CNMI=…,2,…)
// is in no slot either and also gets 0.
func (s *Sim) Deliver(from, text string) ([]int, error) {
	pdus, err := s.encode(from, text)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	idx := make([]int, len(pdus))
	for i, p := range pdus {
		idx[i] = s.deliverLocked(p, s.urcLocked)
	}
	return idx, nil
}

// DeliverParts delivers a multi-part SMS out of the ordinary: its parts (numbered from 1, as in
// their concatenation header) in the given order (nil: 1, 2, …), leaving out those in drop and
// delivering those in dup twice in a row, as networks do.
func (s *Sim) DeliverParts(from, text string, order, drop, dup []int) error {
	pdus, err := s.encode(from, text)
	if err != nil {
		return err
	}
	for _, list := range [][]int{order, drop, dup} {
		for _, n := range list {
			if n < 1 || n > len(pdus) {
				return fmt.Errorf("deliver part %d of a %d-part SMS: %w", n, len(pdus), ErrNoPart)
			}
		}
	}
	if order == nil {
		for n := 1; n <= len(pdus); n++ {
			order = append(order, n)
		}
	}
	in := func(list []int, n int) bool {
		for _, m := range list {
			if m == n {
				return true
			}
		}
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	for _, n := range order {
		if in(drop, n) {
			continue
		}
		s.deliverLocked(pdus[n-1], s.urcLocked)
		if in(dup, n) {
			s.deliverLocked(pdus[n-1], s.urcLocked)
		}
	}
	return nil
}

// DeliverPDU has the network deliver a PDU as given (SMSC prefix included), which need not be
// well-formed. It returns the index, or 0 as Deliver does.
func (s *Sim) DeliverPDU(hexPDU string) (int, error) {
	if hexPDU == "" || strings.ContainsFunc(hexPDU, func(r rune) bool { return r < ' ' || r == 0x7F }) {
		return 0, fmt.Errorf("deliver %q: %w", hexPDU, ErrBadPDU)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, ErrClosed
	}
	return s.deliverLocked(hexPDU, s.urcLocked), nil
}

// DeliverDuring delivers an SMS while the next command starting with prefix is answered: the
// message is stored after the answer was made (a listing does not show it) and its +CMTI lines
// are placed inside the answer at at.
func (s *Sim) DeliverDuring(prefix, from, text string, at Placement) error {
	pdus, err := s.encode(from, text)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.injections = append(s.injections, injection{prefix: normalizePrefix(prefix), pdus: pdus, at: at})
	return nil
}

func (s *Sim) encode(from, text string) ([]string, error) {
	s.mu.Lock()
	ref := s.ref
	s.ref++
	s.mu.Unlock()
	pdus, err := pdu.EncodeDeliver(s.opts.SMSC, from, text, s.opts.Now(), ref, false)
	if err != nil {
		return nil, fmt.Errorf("deliver SMS: %w", err)
	}
	return pdus, nil
}

// Stored returns the SIM's storage: index → PDU.
func (s *Sim) Stored() map[int]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[int]string)
	for i, msg := range s.slots {
		if msg != nil {
			m[i+1] = msg.pdu
		}
	}
	return m
}

// StoredIndexes returns the occupied indexes, in order.
func (s *Sim) StoredIndexes() []int {
	m := s.Stored()
	idx := make([]int, 0, len(m))
	for i := range m {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	return idx
}

// Deletes counts the AT+CMGD commands that deleted index (or found it already empty).
func (s *Sim) Deletes(index int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deletes[index]
}

// Backlog is the number of parts the network holds because the modem cannot take them yet.
func (s *Sim) Backlog() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.backlog)
}

func (s *Sim) usedLocked() int {
	n := 0
	for _, m := range s.slots {
		if m != nil {
			n++
		}
	}
	return n
}

// deliverLocked takes one part from the network: stored (and announced through urc), or
// backlogged behind any earlier part still waiting. It returns the index, 0 if not stored.
func (s *Sim) deliverLocked(p string, urc func(string)) int {
	s.flushLocked()
	if len(s.backlog) == 0 && s.registeredLocked() {
		if idx, ok := s.storeLocked(p, urc); ok {
			return idx
		}
	}
	s.backlog = append(s.backlog, p)
	return 0
}

// storeLocked puts a part in the lowest free slot, or hands it to the host directly with +CMT
// when AT+CNMI's <mt> is 2 (then it is in no slot, and lost if nobody listens). It reports
// false when the storage is full.
func (s *Sim) storeLocked(p string, urc func(string)) (int, bool) {
	switch s.cfg.cnmi[1] {
	case 2:
		urc(fmt.Sprintf("+CMT: ,%d\r\n%s", tpduLen(p), p))
		return 0, true
	}
	for i, m := range s.slots {
		if m == nil {
			s.slots[i] = &message{pdu: p}
			if mt := s.cfg.cnmi[1]; mt == 1 || mt == 3 {
				urc(fmt.Sprintf(`+CMTI: "SM",%d`, i+1))
			}
			return i + 1, true
		}
	}
	return 0, false
}

// flushLocked stores what the network holds, oldest first, as far as the modem can take it.
func (s *Sim) flushLocked() {
	for len(s.backlog) > 0 && s.registeredLocked() {
		if _, ok := s.storeLocked(s.backlog[0], s.urcLocked); !ok {
			return
		}
		s.backlog = s.backlog[1:]
	}
}

// recordSentLocked records a PDU the network accepted, joining the parts of a concatenated
// message once all have come.
func (s *Sim) recordSentLocked(hexPDU string, d *pdu.SubmitDecoded) {
	s.sentPDUs = append(s.sentPDUs, hexPDU)
	now := s.opts.Now()
	c := d.Concat
	if c == nil || c.Total <= 1 || c.Seq < 1 || c.Seq > c.Total {
		s.sent = append(s.sent, Sent{To: d.To.Number, Text: d.Text, Parts: 1, PDUs: []string{hexPDU}, At: now})
	} else {
		k := concatKey{to: d.To.Number, ref: c.Ref, total: c.Total}
		p := s.partials[k]
		if p == nil {
			p = &partial{texts: make(map[int]string)}
			s.partials[k] = p
		}
		p.pdus = append(p.pdus, hexPDU)
		if _, dup := p.texts[c.Seq]; !dup {
			p.texts[c.Seq] = d.Text
		}
		if len(p.texts) < c.Total {
			return
		}
		var text strings.Builder
		for seq := 1; seq <= c.Total; seq++ {
			text.WriteString(p.texts[seq])
		}
		delete(s.partials, k)
		s.sent = append(s.sent, Sent{To: d.To.Number, Text: text.String(), Parts: c.Total, PDUs: p.pdus, At: now})
	}
	close(s.sentChanged)
	s.sentChanged = make(chan struct{})
}
