package http

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/kentongan/kentongan/hub"
)

// FuzzDecodeJSON: every API request body goes through decodeJSON; whatever a client sends, it
// must come back as a 400-class *hub.Error (CodeInvalid) or as a decoded value, never a panic.
func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"note":"Petugas damkar sudah di lokasi"}`))
	f.Add([]byte(`{"status":"acknowledged","note":"'; DROP TABLE tickets; --"}`))
	f.Add([]byte(`{"note":"<img src=x onerror=alert(1)>"}{}`))
	f.Add([]byte(`{"nope":1}`))
	f.Add([]byte(`   `))
	f.Fuzz(func(t *testing.T, body []byte) {
		var v struct {
			Status string   `json:"status"`
			Note   string   `json:"note"`
			Agency string   `json:"agency"`
			Tags   []string `json:"tags"`
		}
		for _, optional := range []bool{false, true} {
			r := httptest.NewRequest("POST", "/api/v1/tickets/x/notes", bytes.NewReader(body))
			err := decodeJSON(httptest.NewRecorder(), r, &v, optional)
			if err == nil {
				continue
			}
			var he *hub.Error
			if !errors.As(err, &he) || hub.ErrorCode(err) != hub.CodeInvalid {
				t.Fatalf("error %T (%v) is not an invalid-request *hub.Error", err, err)
			}
		}
	})
}
