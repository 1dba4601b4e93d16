package provisioning

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// Handler is the device's side of a session: what Serve calls for each request. An error that
// is (or wraps) an *ErrorReply is sent to the laptop as it is; any other is sent as CodeInternal.
type Handler interface {
	Hello(ctx context.Context, h Hello) (HelloReply, error)
	CSR(ctx context.Context) (CSRReply, error)
	Install(ctx context.Context, in Install) (InstallReply, error)
	SelfTest(ctx context.Context, st SelfTest) error
	Poll(ctx context.Context, p Poll) (PollReply, error)
	Bye(ctx context.Context) error
}

func (e *ErrorReply) Error() string { return e.Code + ": " + e.Message }

// Refuse returns the refusal with code and a message for the technician.
func Refuse(code, format string, args ...any) error {
	return &ErrorReply{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Serve answers the requests read from rw until ctx ends or rw fails (the cable pulled: the
// error then wraps ErrClosed). The caller closes rw, which ends Serve's reading.
//
// A request repeated with the same sequence number and type as the last one (its answer was
// lost) is answered again from memory, not carried out twice. Hello is always carried out: it
// begins a session, and the laptop's numbering begins again with it.
func Serve(ctx context.Context, rw io.ReadWriter, h Handler, log *slog.Logger) error {
	frames := make(chan readResult)
	readErr := make(chan error, 1)
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		r := NewReader(rw)
		for {
			f, err := r.ReadFrame()
			if err != nil && !errors.Is(err, ErrChecksum) {
				readErr <- err
				return
			}
			select {
			case frames <- readResult{f, err}:
			case <-rctx.Done():
				return
			}
		}
	}()

	var last struct {
		ok    bool
		seq   uint16
		typ   Type
		reply Frame
	}
	for {
		var r readResult
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-readErr:
			return fmt.Errorf("%w: %w", ErrClosed, err)
		case r = <-frames:
		}
		f := r.f
		if !f.Type.request() {
			if r.err == nil && f.Type < TypeOK {
				// A request of a later version: say so rather than stay silent.
				send(rw, errorFrame(f.Seq, &ErrorReply{Code: CodeUnsupported, Message: fmt.Sprintf("request %s is not known to this kentongand", f.Type)}), log)
			}
			continue // an answer echoed back, or noise that passed the checks
		}
		if r.err != nil {
			log.Debug("damaged frame; asking again", "seq", f.Seq, "type", f.Type)
			send(rw, Frame{Seq: f.Seq, Type: TypeNak}, log)
			continue
		}
		if f.Type != TypeHello && last.ok && f.Seq == last.seq && f.Type == last.typ {
			log.Debug("repeated request; answering again", "seq", f.Seq, "type", f.Type)
			send(rw, last.reply, log)
			continue
		}
		reply := handle(ctx, h, f, log)
		last.ok, last.seq, last.typ, last.reply = true, f.Seq, f.Type, reply
		send(rw, reply, log)
		if f.Type == TypeBye {
			return nil
		}
	}
}

func send(w io.Writer, f Frame, log *slog.Logger) {
	if err := WriteFrame(w, f); err != nil {
		// The reader sees the line fail too, and ends the session.
		log.Debug("cannot answer", "seq", f.Seq, "err", err)
	}
}

func errorFrame(seq uint16, e *ErrorReply) Frame {
	b, _ := json.Marshal(e) // strings and ints only
	return Frame{Seq: seq, Type: TypeError, Payload: b}
}

// handle carries out one request and returns its answer.
func handle(ctx context.Context, h Handler, f Frame, log *slog.Logger) Frame {
	decode := func(v any) error {
		if err := json.Unmarshal(f.Payload, v); err != nil {
			return &ErrorReply{Code: CodeBadRequest, Message: fmt.Sprintf("%s request: %v", f.Type, err)}
		}
		return nil
	}
	var (
		reply any
		err   error
	)
	switch f.Type {
	case TypeHello:
		var req Hello
		if err = decode(&req); err != nil {
			break
		}
		v := min(req.MaxVersion, Version)
		if v < max(req.MinVersion, MinVersion) {
			err = &ErrorReply{Code: CodeVersion, Min: MinVersion, Max: Version,
				Message: fmt.Sprintf("this kentongand speaks protocol versions %d..%d, the laptop %d..%d", MinVersion, Version, req.MinVersion, req.MaxVersion)}
			break
		}
		var hr HelloReply
		hr, err = h.Hello(ctx, req)
		hr.Version = v
		reply = hr
	case TypeCSR:
		reply, err = h.CSR(ctx)
	case TypeInstall:
		var req Install
		if err = decode(&req); err == nil {
			reply, err = h.Install(ctx, req)
		}
	case TypeSelfTest:
		var req SelfTest
		if err = decode(&req); err == nil {
			err = h.SelfTest(ctx, req)
		}
	case TypePoll:
		var req Poll
		if err = decode(&req); err == nil {
			reply, err = h.Poll(ctx, req)
		}
	case TypeBye:
		err = h.Bye(ctx)
	}
	if err != nil {
		var er *ErrorReply
		if !errors.As(err, &er) {
			log.Error("provisioning request failed", "request", f.Type, "err", err)
			er = &ErrorReply{Code: CodeInternal, Message: err.Error()}
		} else {
			log.Warn("provisioning request refused", "request", f.Type, "code", er.Code, "reason", er.Message)
		}
		return errorFrame(f.Seq, er)
	}
	var payload []byte
	if reply != nil {
		if payload, err = json.Marshal(reply); err != nil {
			return errorFrame(f.Seq, &ErrorReply{Code: CodeInternal, Message: "encode answer: " + err.Error()})
		}
	}
	if len(payload) > MaxPayload {
		return errorFrame(f.Seq, &ErrorReply{Code: CodeInternal, Message: "answer too large"})
	}
	return Frame{Seq: f.Seq, Type: TypeOK, Payload: payload}
}
