package route_test

import (
	"errors"
	"testing"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/route"
	"github.com/kentongan/kentongan/mqtt"
)

// FuzzParse: the routing file is edited by hand at the 112 centre and reloaded while the hub
// runs, so a mistake must come back as an *Error naming the line, never as a panic that takes
// ingest down; and a file it accepts must route every incident to an agency it defines.
func FuzzParse(f *testing.F) {
	f.Add(route.DefaultYAML())
	f.Add([]byte("kecamatan: [Cikupa]\nagencies:\n  - id: damkar\n    name: Damkar\ncategories:\n  fire: {agency: damkar}\n"))
	f.Add([]byte("kecamatan: [Cikupa\n"))
	f.Add([]byte("---\na: 1\n---\nb: 2\n"))
	f.Add([]byte("agencies: &a [*a]\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		tb, err := route.Parse(data, func(string) string { return "s3cret" })
		if err != nil {
			var re *route.Error
			if !errors.As(err, &re) || !errors.Is(err, route.ErrInvalid) {
				t.Fatalf("error %T (%v) is not a *route.Error", err, err)
			}
			if re.Line < 0 {
				t.Fatalf("negative line in %v", err)
			}
			return
		}
		again, err := route.Parse(data, func(string) string { return "s3cret" })
		if err != nil || again.Checksum() != tb.Checksum() {
			t.Fatalf("second parse of an accepted file: %v", err)
		}
		for _, in := range []route.Input{
			{Source: mqtt.SourceButton},
			{Source: mqtt.SourceSMS, Category: "fire", Site: hub.Site{Kecamatan: "Cikupa", Kelurahan: "Talaga"}},
			{Source: mqtt.SourceSMS, Category: "crime", Emergency: true, Site: hub.Site{Kecamatan: "Balaraja"}},
			{Source: mqtt.SourceTamper, Category: "nope"},
		} {
			d := tb.Route(in)
			if _, ok := tb.Agency(d.Agency); !ok {
				t.Fatalf("%+v routed to agency %q, which the table does not define", in, d.Agency)
			}
		}
	})
}
