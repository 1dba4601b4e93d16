package daemon

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/kentongan/kentongan/daemon/outbox"
	"github.com/kentongan/kentongan/daemon/report"
	"github.com/kentongan/kentongan/drivers/gpio"
	"github.com/kentongan/kentongan/drivers/modem"
	"github.com/kentongan/kentongan/drivers/modem/pdu"
	"github.com/kentongan/kentongan/mqtt"
)

// The SMS path. A message that reached the modem stays in the SIM until its incident is durably
// in the outbox; only then is it deleted. Whatever stops the kiosk in between (a power cut, a
// crash, a full disk), the message is read again at the next start, and because its incident ID
// is derived from the sender, the network's timestamp and the text, reading it twice raises it
// once: the outbox refuses the second copy, and the hub makes one ticket per incident ID.

// Intervals of the SMS path.
const (
	// relistInterval re-reads the SIM's whole store now and then, so that a message whose +CMTI
	// was lost (a URC during a modem reset) is not left there.
	relistInterval = time.Minute
	// smsRetry is the first wait after a failed send; it doubles up to smsRetryMax.
	smsRetry    = 5 * time.Second
	smsRetryMax = 10 * time.Minute
	// maxSMSAttempts is when a reply is given up on: at the back-off's cap, about two days.
	maxSMSAttempts = 300
	// maxIncidentText leaves room in an incident's 4 KiB text limit for the marker below.
	maxIncidentText = 3900
)

// SMSStats counts what the SMS path has done since start.
type SMSStats struct {
	Received      uint64 `json:"received"`       // whole messages (or incomplete sets) read
	Raised        uint64 `json:"raised"`         // reports and requests stored as incidents
	Duplicates    uint64 `json:"duplicates"`     // messages already raised (read again)
	Malformed     uint64 `json:"malformed"`      // PDUs that could not be decoded (raised for triage)
	Incomplete    uint64 `json:"incomplete"`     // multi-part messages raised without all parts
	Dropped       uint64 `json:"dropped"`        // from unknown senders over the rate limit
	Instructed    uint64 `json:"instructed"`     // unknown senders answered with instructions
	DeleteErrors  uint64 `json:"delete_errors"`  // SIM deletes that failed (retried by the next listing)
	Sent          uint64 `json:"sent"`           // SMS sent
	SendErrors    uint64 `json:"send_errors"`    // failed attempts to send
	RepliesMuted  uint64 `json:"replies_muted"`  // replies not made to a sender over the rate limit
	ReadErrors    uint64 `json:"read_errors"`    // listings and reads that failed
	StoreFailures uint64 `json:"store_failures"` // messages left in the SIM because the disk refused them
}

type smsCounters struct {
	received, raised, duplicates, malformed, incomplete, dropped, instructed atomic.Uint64
	deleteErrors, sent, sendErrors, repliesMuted, readErrors, storeFailures  atomic.Uint64
}

func (c *smsCounters) snapshot() SMSStats {
	return SMSStats{
		Received: c.received.Load(), Raised: c.raised.Load(), Duplicates: c.duplicates.Load(),
		Malformed: c.malformed.Load(), Incomplete: c.incomplete.Load(), Dropped: c.dropped.Load(),
		Instructed: c.instructed.Load(), DeleteErrors: c.deleteErrors.Load(), Sent: c.sent.Load(),
		SendErrors: c.sendErrors.Load(), RepliesMuted: c.repliesMuted.Load(), ReadErrors: c.readErrors.Load(),
		StoreFailures: c.storeFailures.Load(),
	}
}

// smsPath reads reports from the modem and sends replies through it.
type smsPath struct {
	d     *Daemon
	cfg   ModemConfig
	log   *slog.Logger
	modem *modem.Modem
	allow *report.AllowList
	limit *report.Limiter
	asm   *pdu.Assembler // used only by the intake goroutine
	// done remembers the multi-part sets raised lately (by sender, reference and size), so that
	// a part the network delivers again later is deleted, not raised as a new, partial report.
	// Used only by the intake goroutine.
	done  map[concatKey]time.Time
	count smsCounters

	readyKick chan struct{}
	indexes   chan int
	sendKick  chan struct{}
	ref       atomic.Uint32 // concatenation reference of the next multi-part SMS

	mu     sync.Mutex
	health modem.Health
	ready  bool
	// held are SMS the outbox refused to queue (a full disk), kept in memory and sent from
	// there so that a reporter's receipt neither waits for space nor vanishes: the hub sends it
	// once. A power cut loses them; the hub then texts the ticket's status again when the kiosk
	// comes back online.
	held []outbox.SMS
}

func newSMSPath(d *Daemon, open modem.OpenFunc, powerCycle func(context.Context) error) (*smsPath, error) {
	cfg := d.cfg.Modem
	allow, err := report.NewAllowList(cfg.Allow)
	if err != nil {
		return nil, fmt.Errorf("modem.allow: %w", err)
	}
	p := &smsPath{
		d: d, cfg: cfg, log: d.log.With("part", "sms"), allow: allow,
		limit:     report.NewLimiter(cfg.RateBurst, cfg.RateEvery, d.now),
		asm:       pdu.NewAssembler(cfg.ReassemblyTimeout, d.now),
		done:      map[concatKey]time.Time{},
		readyKick: make(chan struct{}, 1),
		indexes:   make(chan int, 256),
		sendKick:  make(chan struct{}, 1),
	}
	var b [2]byte
	_, _ = rand.Read(b[:])
	p.ref.Store(uint32(binary.BigEndian.Uint16(b[:])))
	p.modem = modem.New(modem.Config{
		Open:           open,
		PIN:            cfg.PIN,
		CommandTimeout: cfg.CommandTimeout,
		HealthInterval: cfg.HealthInterval,
		PowerCycle:     powerCycle,
		Logger:         d.log.With("part", "modem"),
		Now:            d.now,
	}, modem.Events{
		Ready: func() {
			p.setReady(true)
			kick(p.readyKick)
			kick(p.sendKick)
		},
		NewMessage: func(_ string, index int) {
			select {
			case p.indexes <- index:
			default:
				// The periodic listing picks it up.
				p.log.Warn("too many new-message notices at once; the next listing reads the rest", "index", index)
			}
		},
		Message: func(hexPDU string) {
			// A modem configured to deliver directly (+CMT) keeps no copy: the message exists
			// only here, so it is raised at once.
			p.handleParts(context.Background(), []modem.Stored{{Index: -1, PDU: hexPDU}})
		},
		Health: func(h modem.Health) {
			p.mu.Lock()
			p.health = h
			p.ready = h.State == "ready"
			p.mu.Unlock()
			if p.ready && h.StorageTotal > 0 && h.StorageUsed >= h.StorageTotal {
				// A full SIM takes no more messages (the network holds them back, then gives
				// up): empty it now rather than at the next listing.
				p.log.Warn("SIM message storage full; draining it", "used", h.StorageUsed, "total", h.StorageTotal)
				kick(p.readyKick)
			}
			kick(d.ledKick)
		},
	})
	return p, nil
}

func (p *smsPath) setReady(r bool) {
	p.mu.Lock()
	p.ready = r
	p.mu.Unlock()
}

func (p *smsPath) isReady() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ready
}

// start runs the modem, the intake and the sender until ctx is done.
func (p *smsPath) start(ctx context.Context, goRun func(func(context.Context))) {
	goRun(func(ctx context.Context) {
		if err := p.modem.Run(ctx); err != nil && ctx.Err() == nil {
			p.log.Error("modem stopped", "err", err)
		}
	})
	goRun(p.runIntake)
	goRun(p.runSender)
}

// runIntake is the one goroutine that reads, raises and deletes messages, so that a listing and
// a +CMTI read never handle the same message at once.
func (p *smsPath) runIntake(ctx context.Context) {
	relist := time.NewTicker(relistInterval)
	defer relist.Stop()
	expire := time.NewTicker(min(time.Second*5, p.cfg.ReassemblyTimeout/4))
	defer expire.Stop()
	stuck := time.NewTicker(cmp.Or(p.cfg.HealthInterval, DefaultHealthInterval))
	defer stuck.Stop()
	var usedBefore bool
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.readyKick:
			p.drain(ctx)
		case <-relist.C:
			p.drain(ctx)
		case <-stuck.C:
			// Messages are handled within moments of their notice; the SIM still holding some
			// a whole health interval later means a notice was lost (garbled, or sent while
			// the modem hung): an emergency SMS must not wait for the periodic listing.
			p.mu.Lock()
			used := p.ready && p.health.StorageUsed > 0
			p.mu.Unlock()
			if used && usedBefore {
				p.drain(ctx)
			}
			usedBefore = used
		case i := <-p.indexes:
			p.readOne(ctx, i)
		case <-expire.C:
			for _, m := range p.asm.Expire() {
				p.count.incomplete.Add(1)
				p.log.Warn("parts of a long SMS never arrived; raising what did", "from", m.From.Number, "parts", m.Parts, "missing", m.Missing)
				p.raise(ctx, m)
			}
		}
	}
}

// drain reads every message stored in the SIM: at start-up, after the modem was re-initialised,
// and now and then in case a notice was missed. A full SIM is emptied this way too.
func (p *smsPath) drain(ctx context.Context) {
	if !p.isReady() {
		return
	}
	msgs, err := p.modem.List(ctx)
	if err != nil {
		p.count.readErrors.Add(1)
		p.log.Warn("cannot list the SIM's messages; trying again later", "err", err)
		return
	}
	if len(msgs) > 0 {
		p.log.Info("messages in the SIM", "count", len(msgs))
	}
	p.handleParts(ctx, msgs)
}

func (p *smsPath) readOne(ctx context.Context, index int) {
	m, err := p.modem.Read(ctx, index)
	if errors.Is(err, modem.ErrEmptySlot) {
		return
	}
	if err != nil {
		p.count.readErrors.Add(1)
		p.log.Warn("cannot read a new message; the next listing reads it", "index", index, "err", err)
		return
	}
	p.handleParts(ctx, []modem.Stored{m})
}

// handleParts decodes stored messages and raises each whole one.
func (p *smsPath) handleParts(ctx context.Context, msgs []modem.Stored) {
	for _, st := range msgs {
		d, err := pdu.DecodeDeliver(st.PDU)
		if errors.Is(err, pdu.ErrNotDeliver) && !reservedMTI(st.PDU) {
			// A sent message or a status report in the store: not a report, and it would
			// take a slot for ever.
			p.log.Info("deleting a stored message that is not a received SMS", "index", st.Index)
			p.delete(ctx, []int{st.Index})
			continue
		}
		if err != nil {
			p.raiseMalformed(ctx, st, err)
			continue
		}
		if k, ok := keyOf(d); ok {
			if at, seen := p.done[k]; seen && p.d.now().Sub(at) < doneKeep {
				p.count.duplicates.Add(1)
				p.log.Info("a part of a long SMS already raised came again; deleting it", "index", st.Index, "from", d.From.Number)
				p.delete(ctx, []int{st.Index})
				continue
			}
		}
		if m := p.asm.Add(d, st.Index); m != nil {
			if k, ok := keyOf(d); ok && m.Complete() {
				p.rememberDone(k)
			}
			p.raise(ctx, m)
		}
	}
}

// doneKeep is how long a raised multi-part set is remembered. A network re-delivers within
// minutes; a sender reusing the reference (it wraps at 256) does so much later.
const doneKeep = 30 * time.Minute

type concatKey struct {
	from  string
	ref   uint16
	total int
	ref16 bool
}

func keyOf(d *pdu.Deliver) (concatKey, bool) {
	if d.Concat == nil {
		return concatKey{}, false
	}
	return concatKey{d.From.Number, d.Concat.Ref, d.Concat.Total, d.Concat.Ref16}, true
}

func (p *smsPath) rememberDone(k concatKey) {
	now := p.d.now()
	for old, at := range p.done {
		if now.Sub(at) >= doneKeep {
			delete(p.done, old)
		}
	}
	p.done[k] = now
}

// raiseMalformed raises a PDU that cannot be decoded for the operator to look at: it may be a
// report, and a report is never dropped.
func (p *smsPath) raiseMalformed(ctx context.Context, st modem.Stored, derr error) {
	p.count.malformed.Add(1)
	p.log.Error("undecodable SMS; raising it for operator triage", "index", st.Index, "err", derr)
	raw := st.PDU
	if len(raw) > 1000 {
		raw = raw[:1000] + "…"
	}
	in := mqtt.Incident{
		// The raw PDU names the message however often it is read; the time of reading does not.
		ID:         smsIncidentID("", time.Time{}, raw),
		Source:     mqtt.SourceSMS,
		Text:       "SMS tidak terbaca (PDU rusak: " + derr.Error() + "): " + raw,
		Unverified: true,
		OccurredAt: p.d.now().UTC(),
	}
	p.store(ctx, in, "undecodable sms", []int{st.Index})
}

// raise turns one whole message into an incident, a request, or a local reply.
func (p *smsPath) raise(ctx context.Context, m *pdu.Message) {
	p.count.received.Add(1)
	tags := compactTags(m.Tags)
	number, err := report.NormalizeNumber(m.From.Number)
	phone := err == nil
	if !phone {
		number = m.From.Number
	}
	log := p.log.With("from", number, "parts", m.Parts)
	allowed := phone && p.allow.Allowed(number)
	withinRate := p.limit.Allow(number)
	unverified := false
	if !allowed {
		switch {
		case !withinRate:
			p.count.dropped.Add(1)
			log.Warn("SMS from an unknown sender over the rate limit: dropped", "text", clip(m.Text, 80))
			p.delete(ctx, tags)
			return
		case p.cfg.UnknownSenders == UnknownInstruct:
			p.count.instructed.Add(1)
			log.Info("SMS from a number not on the allow-list: answering with instructions", "text", clip(m.Text, 80))
			if phone {
				p.queueLocal(m, number, unknownSenderText(p.cfg.Lang))
			}
			p.delete(ctx, tags)
			return
		}
		unverified = true
	}
	r := report.Parse(m.Text)
	in := mqtt.Incident{
		ID:         smsIncidentID(number, m.Timestamp, m.Text),
		Source:     mqtt.SourceSMS,
		Reporter:   number,
		Unverified: unverified,
		OccurredAt: m.Timestamp.UTC(),
	}
	if in.OccurredAt.IsZero() {
		in.OccurredAt = p.d.now().UTC()
	}
	switch {
	case r.Kind == report.Help || ((r.Kind == report.Status || r.Kind == report.Cancel) && r.TicketNumber == ""):
		log.Info("help asked by SMS", "kind", r.Kind)
		if phone && withinRate {
			p.queueLocal(m, number, report.HelpText(p.cfg.Lang))
		} else if phone {
			p.count.repliesMuted.Add(1)
		}
		p.delete(ctx, tags)
		return
	case r.Kind == report.Status:
		in.Request, in.Target = mqtt.RequestStatus, r.TicketNumber
	case r.Kind == report.Cancel:
		in.Request, in.Target = mqtt.RequestCancel, r.TicketNumber
	case r.Kind == report.Confirm:
		// An RT/RW head's answer to the hub's question about a press; without a number the
		// hub takes the latest press it asked this head about.
		in.Request, in.Target = mqtt.RequestConfirm, r.TicketNumber
	case r.Kind == report.Deny:
		in.Request, in.Target = mqtt.RequestDeny, r.TicketNumber
	default:
		in.Category = r.Category
		in.Emergency = r.Kind == report.Emergency
		// 8-bit data may be any bytes; JSON would turn each invalid one into three, past the
		// incident's limit, so the text is made valid before it is measured.
		in.Text = strings.ToValidUTF8(m.Text, "\uFFFD")
		if !m.Complete() {
			in.Text += fmt.Sprintf(" [SMS %d bagian, bagian %v tidak diterima]", m.Parts, m.Missing)
		}
		if len(in.Text) > maxIncidentText {
			log.Warn("SMS longer than an incident's text; the end is cut", "bytes", len(in.Text))
			in.Text = clipBytes(in.Text, maxIncidentText) + " […terpotong]"
		}
	}
	if phone && !withinRate {
		// An allowed sender's report is still raised; it is the replies that stop.
		p.count.repliesMuted.Add(1)
		log.Warn("sender over the rate limit: report raised, no reply")
	}
	p.store(ctx, in, "sms from "+number, tags)
}

// store raises in and deletes its SIM copies once it is safe on disk.
func (p *smsPath) store(ctx context.Context, in mqtt.Incident, what string, tags []int) {
	_, err := p.d.submit(in, what)
	switch {
	case err == nil:
		p.count.raised.Add(1)
	case errors.Is(err, outbox.ErrExists):
		p.count.duplicates.Add(1)
		p.log.Info("SMS read again: its incident is already stored", "incident_id", in.ID)
	default:
		// Held in memory and sent, but the SIM keeps its copy until the disk takes it: the
		// next listing tries again.
		p.count.storeFailures.Add(1)
		p.log.Error("SMS report not on disk; leaving it in the SIM", "incident_id", in.ID, "err", err)
		return
	}
	p.delete(ctx, tags)
}

func (p *smsPath) delete(ctx context.Context, tags []int) {
	for _, i := range tags {
		if i < 0 {
			continue // delivered directly (+CMT): nothing stored
		}
		if err := p.modem.Delete(ctx, i); err != nil {
			p.count.deleteErrors.Add(1)
			p.log.Warn("cannot delete a handled SMS from the SIM; it is read again and recognised later", "index", i, "err", err)
		}
	}
}

// queueLocal stores a reply the kiosk makes itself. Its ID is derived from the message it
// answers, so reading the message twice answers it once.
func (p *smsPath) queueLocal(m *pdu.Message, to, text string) {
	id := "local:" + smsIncidentID(to, m.Timestamp, m.Text)
	p.queue(outbox.SMS{ID: id, To: to, Text: text, QueuedAt: p.d.now()})
}

func (p *smsPath) queue(m outbox.SMS) {
	added, err := p.d.store.QueueSMS(m)
	if err != nil {
		p.mu.Lock()
		if !slices.ContainsFunc(p.held, func(h outbox.SMS) bool { return h.ID == m.ID }) {
			p.held = append(p.held, m)
		}
		p.mu.Unlock()
		p.log.Error("cannot store an SMS to send; keeping it in memory and sending it from there", "sms_id", m.ID, "to", m.To, "err", err)
		kick(p.sendKick)
		return
	}
	if added {
		p.log.Info("SMS queued", "sms_id", m.ID, "to", m.To, "ticket", m.Ticket)
		kick(p.sendKick)
	}
}

// runSender sends queued SMS, oldest first, while the modem is ready.
func (p *smsPath) runSender(ctx context.Context) {
	wait := smsRetry
	for {
		failed := p.sendDue(ctx)
		next := time.Minute
		if failed {
			next, wait = wait, min(wait*2, smsRetryMax)
		} else {
			wait = smsRetry
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-p.sendKick:
		case <-t.C:
		}
		t.Stop()
	}
}

// sendDue sends what is due and reports whether an attempt failed.
func (p *smsPath) sendDue(ctx context.Context) (failed bool) {
	if !p.isReady() {
		return false
	}
	if p.sendHeld(ctx) {
		return true
	}
	due, err := p.d.store.SMSDue()
	if err != nil {
		p.log.Error("cannot read the SMS queue", "err", err)
		return true
	}
	for _, m := range due {
		if ctx.Err() != nil {
			return false
		}
		err := p.send(ctx, m)
		if errors.Is(err, modem.ErrNotReady) {
			return false // Ready kicks the sender again
		}
		giveUp := false
		if err != nil {
			p.count.sendErrors.Add(1)
			giveUp = errors.Is(err, report.ErrNotPhoneNumber) || errors.Is(err, pdu.ErrBadAddress) ||
				errors.Is(err, pdu.ErrTooLong) || m.Attempts+1 >= maxSMSAttempts
			p.log.Warn("SMS not sent", "sms_id", m.ID, "to", m.To, "attempt", m.Attempts+1, "give_up", giveUp, "err", err)
			failed = true
		} else {
			p.count.sent.Add(1)
			p.log.Info("SMS sent", "sms_id", m.ID, "to", m.To, "ticket", m.Ticket)
		}
		if rerr := p.d.store.SMSResult(m.ID, p.d.now(), err, giveUp); rerr != nil {
			p.log.Error("cannot record an SMS attempt; it may be sent again", "sms_id", m.ID, "err", rerr)
		}
		if err != nil && !giveUp {
			return true
		}
	}
	return failed
}

// sendHeld moves SMS held in memory to the outbox when it takes writes again, and otherwise
// sends them from memory. It reports whether a send failed.
func (p *smsPath) sendHeld(ctx context.Context) (failed bool) {
	p.mu.Lock()
	held := slices.Clone(p.held)
	p.mu.Unlock()
	for _, m := range held {
		if ctx.Err() != nil {
			return false
		}
		done := false
		if _, err := p.d.store.QueueSMS(m); err == nil {
			done = true // queued now (or already): sent from the outbox like any other
		} else {
			err := p.send(ctx, m)
			if errors.Is(err, modem.ErrNotReady) {
				return false
			}
			m.Attempts++
			switch {
			case err == nil:
				p.count.sent.Add(1)
				p.log.Info("SMS sent from memory", "sms_id", m.ID, "to", m.To, "ticket", m.Ticket)
				done = true
			case errors.Is(err, report.ErrNotPhoneNumber) || errors.Is(err, pdu.ErrBadAddress) ||
				errors.Is(err, pdu.ErrTooLong) || m.Attempts >= maxSMSAttempts:
				p.count.sendErrors.Add(1)
				p.log.Warn("SMS not sent", "sms_id", m.ID, "to", m.To, "attempt", m.Attempts, "give_up", true, "err", err)
				done = true
			default:
				p.count.sendErrors.Add(1)
				p.log.Warn("SMS not sent", "sms_id", m.ID, "to", m.To, "attempt", m.Attempts, "give_up", false, "err", err)
				failed = true
			}
		}
		p.mu.Lock()
		if i := slices.IndexFunc(p.held, func(h outbox.SMS) bool { return h.ID == m.ID }); i >= 0 {
			if done {
				p.held = slices.Delete(p.held, i, i+1)
			} else {
				p.held[i].Attempts = m.Attempts
			}
		}
		p.mu.Unlock()
		if failed {
			return true
		}
	}
	return false
}

// heldSMS returns the SMS held in memory, for the status.
func (p *smsPath) heldSMS() []outbox.SMS {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.held)
}

func (p *smsPath) send(ctx context.Context, m outbox.SMS) error {
	to, err := report.NormalizeNumber(m.To)
	if err != nil {
		return err
	}
	parts, err := pdu.EncodeSubmit(to, m.Text, pdu.SubmitOptions{Ref: uint16(p.ref.Add(1))})
	if err != nil {
		return err
	}
	for i, part := range parts {
		if _, err := p.modem.Send(ctx, part.TPDULen, part.PDU); err != nil {
			return fmt.Errorf("part %d of %d: %w", i+1, len(parts), err)
		}
	}
	return nil
}

// heartbeat is the modem's health as the heartbeat reports it.
func (p *smsPath) heartbeat() *mqtt.Modem {
	p.mu.Lock()
	h := p.health
	p.mu.Unlock()
	queued := 0
	if due, err := p.d.store.SMSDue(); err == nil {
		queued = len(due)
	}
	out := &mqtt.Modem{
		State: h.State, SignalDBm: h.SignalDBm, Operator: h.Operator, Registration: h.Registration,
		SIM: h.SIM, StorageUsed: h.StorageUsed, StorageTotal: h.StorageTotal, SMSQueued: queued,
	}
	if h.State != "ready" {
		out.Error = h.LastError
	}
	if out.State == "" {
		out.State = "starting"
	}
	return out
}

// fault is what the modem contributes to the kiosk's fault text: a SIM that will not unlock
// needs a technician, unlike a modem that is restarting.
func (p *smsPath) fault() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.health.State == "sim_locked" || p.health.State == "no_sim" {
		return "modem: " + cmpOr(p.health.LastError, p.health.State)
	}
	return ""
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// smsIncidentID derives an SMS's incident ID from what identifies the message: the sender, the
// service centre's timestamp and the text. It has the form of a UUIDv7 whose time is the
// timestamp, so that the outbox replays SMS in the order the network received them.
func smsIncidentID(sender string, ts time.Time, text string) string {
	h := sha256.Sum256([]byte(sender + "\x00" + ts.UTC().Format(time.RFC3339) + "\x00" + text))
	var u uuid.UUID
	ms := uint64(max(ts.UnixMilli(), 0))
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	copy(u[6:], h[:10])
	u[6] = u[6]&0x0f | 0x70 // version 7
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u.String()
}

// compactTags returns the distinct SIM indexes, in order: a part read twice is deleted once.
func compactTags(tags []int) []int {
	out := slices.Clone(tags)
	slices.Sort(out)
	return slices.Compact(out)
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// clipBytes cuts s to at most n bytes without splitting a rune.
func clipBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8RuneStart(s[n]) {
		n--
	}
	return strings.ToValidUTF8(s[:n], "")
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }

// unknownSenderText answers a number that is not on the kiosk's list, under the instruct policy.
func unknownSenderText(lang string) string {
	if report.Lang(lang) == "en" {
		return "Your number is not registered at this kiosk. In an emergency call 112. Ask your RT/RW head to register your number."
	}
	return "Nomor Anda belum terdaftar di kentongan ini. Dalam keadaan darurat hubungi 112. Minta Ketua RT/RW mendaftarkan nomor Anda."
}

// newSMS builds the SMS path for the configured modem, with the power line if there is one.
func (d *Daemon) newSMS() (*smsPath, error) {
	var cycle func(context.Context) error
	if pp := d.cfg.Modem.PowerPin; pp != nil {
		pin, err := d.chip.OpenOut(*pp, gpio.WithInitial(gpio.High))
		if err != nil {
			return nil, fmt.Errorf("open modem power pin %d: %w", *pp, err)
		}
		cycle = func(ctx context.Context) error {
			if err := pin.Out(gpio.Low); err != nil {
				return fmt.Errorf("modem power off: %w", err)
			}
			// A SIM800L needs its supply gone for a moment to reset; two seconds is plenty.
			t := time.NewTimer(2 * time.Second)
			defer t.Stop()
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			if err := pin.Out(gpio.High); err != nil {
				return fmt.Errorf("modem power on: %w", err)
			}
			return nil
		}
	}
	return newSMSPath(d, abandonPrompt(modem.SerialOpener(d.cfg.Modem.Device, d.cfg.Modem.Baud)), cycle)
}

// abandonPrompt opens the modem's port and writes ESC before anything else. The modem has its
// own supply: a kiosk that lost power while sending an SMS left it at the "> " prompt waiting
// for the rest of the message, where every later command is taken as message text and never
// answered, so the restarted kiosk could never use it again (the fault suite found this). ESC
// abandons that message; at the command line it is a stray character whose ERROR, if any,
// the driver's first probes outlast.
func abandonPrompt(open modem.OpenFunc) modem.OpenFunc {
	return func() (io.ReadWriteCloser, error) {
		port, err := open()
		if err != nil {
			return nil, err
		}
		if _, err := port.Write([]byte{0x1b}); err != nil {
			port.Close()
			return nil, fmt.Errorf("abandon a half-sent message: %w", err)
		}
		return port, nil
	}
}

// queueSMSCommand stores an SMS the hub asks the kiosk to send. It is stored even without a
// modem, so that the status page shows what could not be sent and why.
func (d *Daemon) queueSMSCommand(c mqtt.Command) {
	s, err := mqtt.DecodeSMSSend(c)
	if err != nil {
		d.log.Warn("unreadable sms_send command from hub", "command_id", c.ID, "err", err)
		return
	}
	if d.sms == nil {
		d.log.Error("hub asked for an SMS but this kiosk has no modem", "command_id", c.ID, "to", s.To, "ticket", s.Ticket)
		return
	}
	d.sms.queue(outbox.SMS{ID: c.ID, To: s.To, Text: s.Text, Ticket: s.Ticket, QueuedAt: d.now()})
}

// reservedMTI reports whether a PDU's first TPDU octet has the reserved message type 3: no modem
// stores such a thing, so it is garbage to raise for triage rather than a sent message to drop.
func reservedMTI(hexPDU string) bool {
	b, err := hex.DecodeString(hexPDU)
	if err != nil || len(b) < 1 || int(b[0])+1 >= len(b) {
		return false
	}
	return b[int(b[0])+1]&0x03 == 0x03
}
