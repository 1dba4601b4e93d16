package http_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkAuthenticatedRequest measures a small API request with each kind of credentials:
// what authentication costs on top of the handler (a token or session lookup in SQLite).
func BenchmarkAuthenticatedRequest(b *testing.B) {
	e := newEnv(b, nil)
	token := e.token("siti", "")
	c := e.client()
	c.do("POST", "/api/v1/login", `{"name":"siti","password":"`+password("siti")+`"}`)
	cookies := c.hc.Jar.Cookies(mustURL(e.srv.URL))
	h := e.srv.Config.Handler
	for _, bc := range []struct {
		name string
		set  func(*http.Request)
	}{
		{"token", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }},
		{"session", func(r *http.Request) { r.AddCookie(cookies[0]) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				r := httptest.NewRequest("GET", "/api/v1/me", nil)
				bc.set(r)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}
