package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/account"
)

// pageNames are the templates that are whole pages; each is parsed with the layout.
var pageNames = []string{"queue", "ticket", "map", "kiosks", "alerts", "login", "error"}

// parsePages parses each page with the layout into its own set, so that every page can define
// "content", "head" and "scripts" without clashing with the others.
func parsePages(funcs template.FuncMap) (map[string]*template.Template, error) {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/parts.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := layout.Clone()
		if err != nil {
			return nil, err
		}
		if _, err := t.ParseFS(templateFS, "templates/"+name+".html"); err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}

// page is what every template gets.
type page struct {
	L          Lang
	Title      string
	Nav        string
	User       *userView
	CSRF       string
	CSRFField  string
	LogoutURL  string
	Back       string // this page's path, for the language switch to come back to
	Flash      string
	FlashErr   string
	AlertCount int
	Now        time.Time
	Data       any
}

// userView is the signed-in user as the layout shows them.
type userView struct {
	*account.User
	AgencyName string
}

// IsAgency reports whether the user sees the agency view.
func (u *userView) IsAgency() bool { return u != nil && u.Role == account.RoleAgency }

// Name is the user's full name, else their login name.
func (u *userView) Name() string {
	if u.FullName != "" {
		return u.FullName
	}
	return u.User.Name
}

func (h *Handler) funcs() template.FuncMap {
	return template.FuncMap{
		"static": func(name string) string {
			return "/static/" + name + "?v=" + h.version[name]
		},
		"rfc3339": func(t any) string {
			if tt, ok := timeOf(t); ok {
				return tt.UTC().Format(time.RFC3339)
			}
			return ""
		},
		"clock": func(t any) string {
			if tt, ok := timeOf(t); ok {
				return tt.In(wib).Format("15:04")
			}
			return ""
		},
		"datetime": func(t any) string {
			if tt, ok := timeOf(t); ok {
				return tt.In(wib).Format("02-01-2006 15:04:05") + " WIB"
			}
			return "—"
		},
		"countdown": func(now time.Time, due *time.Time) string {
			if due == nil {
				return ""
			}
			return countdown(due.Sub(now))
		},
		"has": func(list []string, s string) bool { return slices.Contains(list, s) },
		// detail words an event's machine-readable detail ("yes", "ack"); others (a ticket
		// ID, a count) show as they are.
		"detail": func(l Lang, d string) string {
			if Has("detail." + d) {
				return l.T("detail." + d)
			}
			return d
		},
		"row":   func(p *page, t *ticketView) rowData { return rowData{P: p, T: t} },
		"timer": func(p *page, t *ticketView) rowData { return rowData{P: p, T: t} },
	}
}

// rowData hands a template both the page (language, CSRF) and one ticket.
type rowData struct {
	P *page
	T *ticketView
}

func timeOf(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, !t.IsZero()
	case *time.Time:
		if t == nil {
			return time.Time{}, false
		}
		return *t, !t.IsZero()
	}
	return time.Time{}, false
}

// countdown formats what is left until a deadline as [-]h:mm:ss, as app.js does once the page
// runs, so that the first paint and the ticking timer agree.
func countdown(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign, d = "-", -d
	}
	d = d.Truncate(time.Second)
	h, m, s := int(d/time.Hour), int(d/time.Minute)%60, int(d/time.Second)%60
	if h > 0 {
		return fmt.Sprintf("%s%d:%02d:%02d", sign, h, m, s)
	}
	return fmt.Sprintf("%s%02d:%02d", sign, m, s)
}

// newPage starts a page for r.
func (h *Handler) newPage(r *http.Request, u *account.User, nav, title string) *page {
	lang := requestLang(r)
	p := &page{L: lang, Nav: nav, Title: title, Now: h.clock.Now(), Back: backPath(r)}
	if u != nil {
		p.User = &userView{User: u, AgencyName: u.Agency}
		p.CSRFField, p.CSRF = h.opts.Auth.CSRF(r)
		p.LogoutURL = h.opts.Auth.LogoutPath()
	}
	if ok := r.URL.Query().Get("ok"); ok != "" && Has("action.done."+ok) {
		p.Flash = lang.T("action.done." + ok)
	}
	return p
}

// backPath is r's path and query, for coming back to the same page.
func backPath(r *http.Request) string {
	q := r.URL.Query()
	q.Del("ok")
	s := r.URL.Path
	if enc := q.Encode(); enc != "" {
		s += "?" + enc
	}
	return url.QueryEscape(s)
}

// render writes a whole page.
func (h *Handler) render(w http.ResponseWriter, status int, name string, p *page) {
	h.renderTemplate(w, status, name, "layout", p)
}

// renderTemplate writes one template of a page's set: the page, or a fragment of it that the
// script swaps in. It renders into a buffer first so that a template error becomes a clean 500.
func (h *Handler) renderTemplate(w http.ResponseWriter, status int, page, tmpl string, data any) {
	t, ok := h.pages[page]
	if !ok {
		h.log.Error("dashboard: no such page template", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, tmpl, data); err != nil {
		h.log.Error("dashboard: template failed", "page", page, "template", tmpl, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderError shows an error page in the user's language; the details of an internal error go
// to the log only.
func (h *Handler) renderError(w http.ResponseWriter, r *http.Request, u *account.User, err error) {
	p := h.newPage(r, u, "", "")
	status, msg := http.StatusInternalServerError, p.L.T("error.internal")
	switch hub.ErrorCode(err) {
	case hub.CodeNotFound:
		status, msg = http.StatusNotFound, hub.ErrorMessage(err)
	case hub.CodeForbidden:
		status, msg = http.StatusForbidden, p.L.T("error.forbidden")
	case hub.CodeInvalid, hub.CodeConflict:
		status, msg = http.StatusBadRequest, hub.ErrorMessage(err)
	case hub.CodeUnavailable:
		status, msg = http.StatusServiceUnavailable, hub.ErrorMessage(err)
	default:
		h.log.Error("dashboard request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	p.Title = p.L.T("error.title")
	p.Data = struct{ Message string }{msg}
	h.render(w, status, "error", p)
}

// hashFiles returns a short content hash of every file, for ?v= in static URLs: a browser may
// then cache them long, and still gets a new file the moment a new hub serves one.
func hashFiles(fsys fs.FS) (map[string]string, error) {
	out := map[string]string{}
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[path] = hex.EncodeToString(sum[:6])
		return nil
	})
	return out, err
}

func (h *Handler) staticHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/static/")
		if v := r.URL.Query().Get("v"); v != "" && v == h.version[name] {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		h.static.ServeHTTP(w, r)
	})
}
