package modem

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// maxIndex bounds a storage index: the largest storages modems offer hold a few hundred.
const maxIndex = 9999

// List returns every message in storage (AT+CMGL=4, all states). An entry whose PDU line is
// missing or not hex is left out, and left in storage, rather than handed on half-read.
func (m *Modem) List(ctx context.Context) ([]Stored, error) {
	lines, err := m.op(ctx, "list messages", "AT+CMGL=4")
	if err != nil {
		return nil, err
	}
	msgs, bad := parseList(lines)
	if bad > 0 {
		m.mu.Lock()
		m.garbageBase += bad
		m.mu.Unlock()
		m.log.Warn("modem: storage listing had entries that could not be read; they stay in storage", "unreadable", bad)
	}
	return msgs, nil
}

// Read returns the message at index (AT+CMGR). An empty slot gives ErrEmptySlot. Reading an
// unread message marks it read in storage; it is not deleted.
func (m *Modem) Read(ctx context.Context, index int) (Stored, error) {
	what := "read message " + strconv.Itoa(index)
	if err := checkIndex(index); err != nil {
		return Stored{}, fmt.Errorf("%s: %w", what, err)
	}
	lines, err := m.op(ctx, what, "AT+CMGR="+strconv.Itoa(index))
	if err != nil {
		if cmsCode(err) == 321 { // Quectel's answer for an empty slot
			return Stored{}, fmt.Errorf("%w: %w", ErrEmptySlot, err)
		}
		return Stored{}, err
	}
	s, err := parseRead(lines)
	if err != nil {
		return Stored{}, fmt.Errorf("%s: %w", what, err)
	}
	s.Index = index
	return s, nil
}

// Delete removes the message at index (AT+CMGD). The daemon calls it only once the report is
// stored durably.
func (m *Modem) Delete(ctx context.Context, index int) error {
	what := "delete message " + strconv.Itoa(index)
	if err := checkIndex(index); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	_, err := m.op(ctx, what, "AT+CMGD="+strconv.Itoa(index))
	return err
}

// Send sends one SMS given as a PDU with its SMSC part (usually "00": the SIM's SMSC) and the
// TPDU's length in octets, as AT+CMGS wants them. It returns the message reference.
func (m *Modem) Send(ctx context.Context, tpduLen int, pduHex string) (int, error) {
	if err := checkPDU(tpduLen, pduHex); err != nil {
		return -1, fmt.Errorf("send message: %w", err)
	}
	s, err := m.serving()
	if err != nil {
		return -1, fmt.Errorf("send message: %w", err)
	}
	mr, err := s.at.SendPDU(ctx, tpduLen, pduHex, TimeoutFor("AT+CMGS", m.cfg.CommandTimeout))
	if err != nil {
		return -1, fmt.Errorf("send message: %w", s.opError(err))
	}
	return mr, nil
}

func (m *Modem) serving() (*session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sess == nil || !m.sess.serving {
		return nil, ErrNotReady
	}
	return m.sess, nil
}

// op runs a command for the daemon: refused with ErrNotReady unless the modem is
// initialised, and noticed by the health loop when it times out.
func (m *Modem) op(ctx context.Context, what, cmd string) ([]string, error) {
	s, err := m.serving()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	lines, err := m.command(ctx, s.at, cmd)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, s.opError(err))
	}
	return lines, nil
}

// opError makes a failure of the port an ErrNotReady for the daemon, which retries after the
// next Ready, and has a timeout checked by the health loop at once.
func (s *session) opError(err error) error {
	switch {
	case errors.Is(err, ErrClosed):
		return fmt.Errorf("%w: %w", ErrNotReady, err)
	case errors.Is(err, ErrTimeout):
		kick(s.suspect)
	}
	return err
}

func checkIndex(index int) error {
	if index < 0 || index > maxIndex {
		return fmt.Errorf("%w: index %d outside 0..%d", ErrInvalid, index, maxIndex)
	}
	return nil
}

// parseList reads "+CMGL: <index>,<stat>,[<alpha>],<length>" lines, each followed by its PDU.
func parseList(lines []string) (msgs []Stored, bad int) {
	msgs = []Stored{}
	for i := 0; i < len(lines); i++ {
		if prefixOf(lines[i]) != "+CMGL" {
			bad++
			continue
		}
		f := fields(lines[i])
		if len(f) < 2 {
			bad++
			continue
		}
		idx, err1 := strconv.Atoi(f[0].v)
		stat, err2 := strconv.Atoi(f[1].v)
		if err1 != nil || err2 != nil || idx < 0 || i+1 >= len(lines) || !isHex(lines[i+1]) {
			bad++
			continue
		}
		msgs = append(msgs, Stored{Index: idx, Stat: stat, PDU: lines[i+1]})
		i++
	}
	return msgs, bad
}

// parseRead reads "+CMGR: <stat>,[<alpha>],<length>" and the PDU line. SIMCom and Huawei
// answer a bare OK for an empty slot, some firmwares "+CMGR: 0,,0".
func parseRead(lines []string) (Stored, error) {
	for i, l := range lines {
		if prefixOf(l) != "+CMGR" {
			continue
		}
		f := fields(l)
		if len(f) < 2 {
			return Stored{}, fmt.Errorf("%w: %q", ErrBadResponse, l)
		}
		stat, err := strconv.Atoi(f[0].v)
		if err != nil {
			return Stored{}, fmt.Errorf("%w: %q", ErrBadResponse, l)
		}
		if n, err := strconv.Atoi(f[len(f)-1].v); err == nil && n == 0 {
			return Stored{}, ErrEmptySlot
		}
		if i+1 >= len(lines) || !isHex(lines[i+1]) {
			return Stored{}, fmt.Errorf("%w: +CMGR without a PDU line", ErrBadResponse)
		}
		return Stored{Stat: stat, PDU: lines[i+1]}, nil
	}
	return Stored{}, ErrEmptySlot
}
