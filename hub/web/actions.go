package web

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
)

// maxForm bounds an action's form: a note and a few fields.
const maxForm = 16 << 10

// handleAction runs an operator's action on a ticket, then goes back to where the form was
// (post/redirect/get, so that a reload does not act twice). A refused action shows the ticket
// again with the reason.
func (h *Handler) handleAction(w http.ResponseWriter, r *http.Request, u *account.User) {
	ctx, cancel := requestContext(r)
	defer cancel()
	action := r.PathValue("action")
	p := h.newPage(r, u, "queue", "")
	known := []string{actAck, actDispatch, actResolve, actClose, actCancel, actMerge, actFalseAlarm}
	if !slices.Contains(known, action) {
		h.renderError(w, r, u, hub.Errorf(hub.CodeNotFound, "%s", p.L.T("action.unknown")))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		h.renderError(w, r, u, hub.Errorf(hub.CodeInvalid, "form: %v", err))
		return
	}
	t, err := h.opts.Tickets.Ticket(ctx, r.PathValue("id"))
	if err != nil {
		h.renderError(w, r, u, err)
		return
	}
	if !u.CanAccessAgency(t.Agency) {
		h.forbidden(w, r, u, action+" on ticket "+t.Number+" of agency "+t.Agency)
		return
	}
	need := account.PermHandleTickets
	if action == actResolve {
		need = account.PermResolveTickets
	}
	if !u.Can(need) {
		h.forbidden(w, r, u, action+" on ticket "+t.Number)
		return
	}
	note := strings.TrimSpace(r.PostFormValue("note"))
	if len(note) > hub.MaxNoteLen || !utf8.ValidString(note) {
		h.actionFailed(ctx, w, r, u, p, hub.Errorf(hub.CodeInvalid, "note must be valid text of at most %d bytes", hub.MaxNoteLen))
		return
	}
	if _, err := h.act(ctx, p, u, t, action, note, r); err != nil {
		h.actionFailed(ctx, w, r, u, p, err)
		return
	}
	h.log.Info("dashboard action", "user", u.Name, "action", action, "ticket", t.Number)
	back := localPath(r.PostFormValue("back"), "/tickets/"+t.ID)
	sep := "?"
	if strings.Contains(back, "?") {
		sep = "&"
	}
	http.Redirect(w, r, back+sep+"ok="+action, http.StatusSeeOther)
}

// act calls the service for one action.
func (h *Handler) act(ctx context.Context, p *page, u *account.User, t *hub.Ticket, action, note string, r *http.Request) (*hub.Ticket, error) {
	svc, by := h.opts.Tickets, u.Name
	switch action {
	case actAck:
		return svc.Acknowledge(ctx, t.ID, by, note)
	case actDispatch:
		agency := r.PostFormValue("agency")
		if agency == "" {
			return nil, hub.Errorf(hub.CodeInvalid, "%s", p.L.T("action.needagency"))
		}
		return svc.Dispatch(ctx, t.ID, agency, by, note)
	case actResolve:
		return svc.Resolve(ctx, t.ID, by, note)
	case actClose:
		return svc.CloseTicket(ctx, t.ID, by, note)
	case actCancel:
		if note == "" {
			return nil, hub.Errorf(hub.CodeInvalid, "%s", p.L.T("action.needreason"))
		}
		return svc.Cancel(ctx, t.ID, by, note)
	case actMerge:
		into := strings.TrimSpace(r.PostFormValue("into"))
		if into == "" {
			return nil, hub.Errorf(hub.CodeInvalid, "%s", p.L.T("action.needtarget"))
		}
		target, err := svc.Ticket(ctx, into)
		if err != nil {
			return nil, err
		}
		if !u.CanAccessAgency(target.Agency) {
			return nil, hub.Errorf(hub.CodeForbidden, "ticket %s is not yours", target.Number)
		}
		return svc.MergeDuplicate(ctx, t.ID, target.ID, by, note)
	case actFalseAlarm:
		if note == "" {
			return nil, hub.Errorf(hub.CodeInvalid, "%s", p.L.T("action.needreason"))
		}
		return svc.MarkFalseAlarm(ctx, t.ID, by, note)
	}
	return nil, hub.Errorf(hub.CodeNotFound, "%s", p.L.T("action.unknown"))
}

// actionFailed shows the ticket again with why the action was refused. Internal errors are
// logged and shown as such; the hub's own errors are safe to show.
func (h *Handler) actionFailed(ctx context.Context, w http.ResponseWriter, r *http.Request, u *account.User, p *page, err error) {
	code := hub.ErrorCode(err)
	status := http.StatusBadRequest
	switch code {
	case hub.CodeConflict:
		status = http.StatusConflict
	case hub.CodeNotFound:
		status = http.StatusNotFound
	case hub.CodeForbidden:
		status = http.StatusForbidden
	case hub.CodeUnavailable:
		status = http.StatusServiceUnavailable
	case hub.CodeInternal:
		status = http.StatusInternalServerError
		h.log.Error("dashboard action failed", "user", u.Name, "path", r.URL.Path, "err", err)
	}
	msg := hub.ErrorMessage(err)
	if code == hub.CodeInternal {
		msg = p.L.T("error.internal")
	}
	d, l, ok := h.loadTicket(ctx, w, r, u, p)
	if !ok {
		return
	}
	p.FlashErr = p.L.T("action.failed", msg)
	p.Title = p.L.T("ticket.title", d.Ticket.Number)
	p.Data = d
	h.decorate(ctx, p, u, l)
	h.render(w, status, "ticket", p)
}
