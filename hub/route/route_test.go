package route_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/route"
	"github.com/kentongan/kentongan/mqtt"
	"github.com/kentongan/kentongan/test/poll"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func site(kec, kel string) hub.Site { return hub.Site{Kecamatan: kec, Kelurahan: kel} }

// TestDefaultRouting routes with the built-in configuration for Kabupaten Tangerang.
func TestDefaultRouting(t *testing.T) {
	tb := route.Default()
	const E, N = hub.PriorityEmergency, hub.PriorityNormal
	tests := []struct {
		name         string
		in           route.Input
		agency, unit string
		priority     hub.Priority
	}{
		{"panic button without category", route.Input{Source: mqtt.SourceButton, Site: site("Panongan", "Ciakar")}, hub.AgencyTriage, "", E},
		{"fire button", route.Input{Source: mqtt.SourceButton, Category: "fire", Site: site("Cikupa", "")}, "damkar", "", E},
		{"fire by SMS", route.Input{Source: mqtt.SourceSMS, Category: "fire"}, "damkar", "", E},
		{"medical", route.Input{Source: mqtt.SourceSMS, Category: "medical"}, "psc119", "", E},
		{"accident", route.Input{Source: mqtt.SourceSMS, Category: "accident"}, "psc119", "", E},
		{"disaster", route.Input{Source: mqtt.SourceSMS, Category: "disaster", Site: site("Teluknaga", "")}, "bpbd", "", E},
		{"crime in Balaraja: its polsek", route.Input{Source: mqtt.SourceSMS, Category: "crime", Site: site("Balaraja", "Talagasari")}, "polresta", "polsek-balaraja", E},
		{"crime in Sukamulya: Polsek Balaraja", route.Input{Source: mqtt.SourceSMS, Category: "crime", Site: site("sukamulya", "")}, "polresta", "polsek-balaraja", E},
		{"crime in Teluknaga: Polres Metro", route.Input{Source: mqtt.SourceSMS, Category: "crime", Site: site("Teluknaga", "")}, "polres-metro-tangerang", "polsek-teluknaga", E},
		{"crime in Kelapa Dua: Polres Tangsel", route.Input{Source: mqtt.SourceSMS, Category: "crime", Site: site("Kelapa  Dua", "")}, "polres-tangsel", "polsek-kelapa-dua", E},
		{"crime without a site", route.Input{Source: mqtt.SourceSMS, Category: "crime"}, "polresta", "", E},
		{"electricity in Cikupa", route.Input{Source: mqtt.SourceSMS, Category: "electricity", Site: site("Cikupa", "")}, "pln", "up3-cikupa", N},
		{"electricity in Mauk", route.Input{Source: mqtt.SourceSMS, Category: "electricity", Site: site("Mauk", "")}, "pln", "up3-teluknaga", N},
		{"electricity called DARURAT", route.Input{Source: mqtt.SourceSMS, Category: "electricity", Emergency: true, Site: site("Legok", "")}, "pln", "up3-serpong", E},
		{"water", route.Input{Source: mqtt.SourceSMS, Category: "water"}, "tkr", "", N},
		{"road", route.Input{Source: mqtt.SourceSMS, Category: "road"}, "dbmsda", "", N},
		{"waste", route.Input{Source: mqtt.SourceSMS, Category: "waste"}, "dlhk", "", N},
		{"administration", route.Input{Source: mqtt.SourceSMS, Category: "administration"}, "disdukcapil", "", N},
		{"social", route.Input{Source: mqtt.SourceSMS, Category: "social"}, "dinsos", "", N},
		{"other", route.Input{Source: mqtt.SourceSMS, Category: "other"}, hub.AgencyTriage, "", N},
		{"unreadable SMS", route.Input{Source: mqtt.SourceSMS}, hub.AgencyTriage, "", N},
		{"DARURAT without category", route.Input{Source: mqtt.SourceSMS, Emergency: true}, hub.AgencyTriage, "", E},
		{"unknown category", route.Input{Source: mqtt.SourceSMS, Category: "streetlight"}, hub.AgencyTriage, "", N},
		{"tamper", route.Input{Source: mqtt.SourceTamper, Category: "crime", Site: site("Cikupa", "")}, hub.AgencyTriage, "", N},
		{"test press", route.Input{Source: mqtt.SourceButton, Category: "fire", Test: true}, hub.AgencyTriage, "", N},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tb.Route(tt.in)
			if d.Agency != tt.agency || d.Unit != tt.unit || d.Priority != tt.priority || d.Rule == "" {
				t.Errorf("Route(%+v) = %+v, want %s/%s %s", tt.in, d, tt.agency, tt.unit, tt.priority)
			}
		})
	}
}

func TestDefaultConfigContents(t *testing.T) {
	tb := route.Default()
	as := tb.Agencies()
	if as[0].ID != hub.AgencyTriage {
		t.Errorf("first agency %q, want triage", as[0].ID)
	}
	for _, id := range []string{"polresta", "damkar", "psc119", "bpbd", "pln", "tkr", "dbmsda", "dlhk", "disdukcapil", "dinsos", "satpolpp", "uptd-ppa"} {
		a, ok := tb.Agency(id)
		if !ok || a.Name == "" || a.Short == "" {
			t.Errorf("agency %s: %+v, %v", id, a, ok)
		}
	}
	// Every kecamatan has its polsek and its PLN unit.
	kecamatan := []string{"Balaraja", "Cikupa", "Cisauk", "Cisoka", "Curug", "Gunung Kaler", "Jambe", "Jayanti", "Kelapa Dua",
		"Kemiri", "Kosambi", "Kresek", "Kronjo", "Legok", "Mauk", "Mekar Baru", "Pagedangan", "Pakuhaji", "Panongan",
		"Pasar Kemis", "Rajeg", "Sepatan", "Sepatan Timur", "Sindang Jaya", "Solear", "Sukadiri", "Sukamulya", "Teluknaga", "Tigaraksa"}
	if len(kecamatan) != 29 {
		t.Fatalf("%d kecamatan in the test", len(kecamatan))
	}
	for _, k := range kecamatan {
		if d := tb.Route(route.Input{Source: mqtt.SourceSMS, Category: "crime", Site: site(k, "")}); d.Unit == "" {
			t.Errorf("crime in %s: no polsek (%+v)", k, d)
		}
		if d := tb.Route(route.Input{Source: mqtt.SourceSMS, Category: "electricity", Site: site(k, "")}); d.Unit == "" {
			t.Errorf("electricity in %s: no PLN unit (%+v)", k, d)
		}
	}
	if tb.Checksum() == "" || !strings.Contains(string(route.DefaultYAML()), "Tigaraksa") {
		t.Errorf("default config checksum %q", tb.Checksum())
	}
}

const small = `kecamatan: [Cikupa, Panongan, Legok]
agencies:
  - id: polisi
    name: Polresta
    units:
      - {id: polsek-cikupa, name: Polsek Cikupa, areas: [Cikupa]}
      - {id: pos-talaga, name: Pos Talaga, areas: ["Cikupa/Talaga"]}
  - id: damkar
    name: Damkar
    webhook: {url: "https://damkar.example/hook", secret: s3cret, events: [status]}
  - id: pdam
    name: PDAM
    units:
      - {id: cabang-a, areas: [Panongan]}
categories:
  crime: {agency: polisi, priority: emergency}
  fire: {agency: damkar, priority: emergency}
  water: {agency: pdam, priority: normal}
overrides:
  - area: Legok
    agency: damkar
  - area: Panongan
    categories: [water]
    agency: damkar
  - area: Panongan/Ciakar
    categories: [water]
    agency: pdam
    unit: cabang-a
`

func TestOverridesAndUnits(t *testing.T) {
	tb, err := route.Parse([]byte(small), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		cat          string
		site         hub.Site
		agency, unit string
	}{
		{"crime", site("Cikupa", "Bojong"), "polisi", "polsek-cikupa"},
		{"crime", site("Cikupa", "Talaga"), "polisi", "pos-talaga"}, // the kelurahan's unit before the kecamatan's
		{"crime", site("CIKUPA", "talaga"), "polisi", "pos-talaga"},
		{"crime", site("Legok", ""), "damkar", ""},                // an override without categories takes all
		{"water", site("Panongan", "Mekarbakti"), "damkar", ""},   // kecamatan override
		{"water", site("Panongan", "Ciakar"), "pdam", "cabang-a"}, // the kelurahan's override wins, wherever it is in the file
		{"water", site("Cikupa", ""), "pdam", ""},
		{"", site("Legok", ""), hub.AgencyTriage, ""}, // no category: triage, overrides or not
	} {
		d := tb.Route(route.Input{Source: mqtt.SourceSMS, Category: tt.cat, Site: tt.site})
		if d.Agency != tt.agency || d.Unit != tt.unit {
			t.Errorf("%s at %+v: %+v, want %s/%s", tt.cat, tt.site, d, tt.agency, tt.unit)
		}
	}
	w, ok := tb.Webhook("damkar")
	if !ok || w.Secret != "s3cret" || !w.Wants(hub.EventStatus) || w.Wants(hub.EventConfirmation) {
		t.Errorf("damkar webhook %+v, %v", w, ok)
	}
	if a, _ := tb.Agency("damkar"); !a.Webhook {
		t.Errorf("agency does not say it has a webhook")
	}
	if _, ok := tb.Webhook("polisi"); ok {
		t.Errorf("polisi has no webhook")
	}
}

// TestInvalidConfigNamesTheLine: every mistake is refused with the line at fault.
func TestInvalidConfigNamesTheLine(t *testing.T) {
	tests := []struct {
		name, yaml string
		line       int
		want       string
	}{
		{"not YAML", "agencies:\n  - id: a\n    name: x: y\n", 3, "not valid YAML"},
		{"unknown key", "agencies:\n  - id: polisi\n    name: P\n    nmae: x\n", 4, "unknown key"},
		{"wrong type", "agencies:\n  - id: polisi\n    name: P\n    units: polsek\n", 4, "cannot unmarshal"},
		{"undefined agency", "agencies:\n  - {id: polisi, name: P}\ncategories:\n  crime: {agency: polis, priority: emergency}\n", 4, `agency "polis" is not defined`},
		{"bad priority", "agencies:\n  - {id: polisi, name: P}\ncategories:\n  crime:\n    agency: polisi\n    priority: urgent\n", 6, "priority"},
		{"upper-case category", "agencies:\n  - {id: p, name: P}\ncategories:\n  Fire: {agency: p, priority: emergency}\n", 4, "lower case"},
		{"duplicate agency", "agencies:\n  - {id: p, name: P}\n  - {id: p, name: Q}\n", 3, "used twice"},
		{"bad agency id", "agencies:\n  - {id: Polisi Kota, name: P}\n", 2, "must be"},
		{"triage redefined", "agencies:\n  - {id: triage, name: P}\n", 2, "built in"},
		{"missing name", "agencies:\n  - id: p\n", 2, "missing"},
		{"unknown kecamatan", "kecamatan: [Cikupa]\nagencies:\n  - id: p\n    name: P\n    units:\n      - id: u\n        areas: [Cikupa, Cikpa]\n", 7, `"Cikpa" is not one of the kecamatan`},
		{"override of unknown unit", "agencies:\n  - {id: p, name: P}\noverrides:\n  - area: Cikupa\n    agency: p\n    unit: nope\n", 6, "no unit"},
		{"override without agency", "overrides:\n  - area: Cikupa\n", 2, "missing"},
		{"webhook without secret", "agencies:\n  - id: p\n    name: P\n    webhook:\n      url: https://p.example/\n", 5, "secret"},
		{"webhook not http", "agencies:\n  - id: p\n    name: P\n    webhook: {url: 'ftp://p.example/', secret: s}\n", 4, "http"},
		{"webhook secret env unset", "agencies:\n  - id: p\n    name: P\n    webhook: {url: 'https://p.example/', secret_env: KENTONGAN_NOPE}\n", 4, "KENTONGAN_NOPE"},
		{"unknown event kind", "agencies:\n  - id: p\n    name: P\n    webhook:\n      url: https://p.example/\n      secret: s\n      events: [status, explode]\n", 7, "explode"},
		{"two documents", "agencies: []\n---\nagencies: []\n", 2, "more than one"},
		{"empty", "", 0, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := route.Parse([]byte(tt.yaml), func(string) string { return "" })
			var e *route.Error
			if !errors.As(err, &e) || !errors.Is(err, route.ErrInvalid) {
				t.Fatalf("Parse = %v, want a *route.Error", err)
			}
			if e.Line != tt.line || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse = %q (line %d), want line %d and %q", err, e.Line, tt.line, tt.want)
			}
		})
	}
}

func TestSecretFromEnvironment(t *testing.T) {
	y := "agencies:\n  - id: p\n    name: P\n    webhook: {url: 'https://p.example/', secret_env: HOOK_SECRET}\n"
	tb, err := route.Parse([]byte(y), func(k string) string {
		if k == "HOOK_SECRET" {
			return "from-env"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if w, _ := tb.Webhook("p"); w.Secret != "from-env" {
		t.Errorf("secret %q", w.Secret)
	}
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// TestReloadKeepsOldConfigOnError: a good file is swapped in on Reload; a bad one is refused
// with its line, visible in the status and the metric, and the previous table keeps routing.
func TestReloadKeepsOldConfigOnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "routing.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(small)
	reg := prometheus.NewRegistry()
	var reloads []error
	r, err := route.New(route.Options{Path: path, Registerer: reg, Logger: quiet, Clock: fixedClock{time.Unix(1e9, 0)},
		OnReload: func(err error) { reloads = append(reloads, err) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fire := route.Input{Source: mqtt.SourceSMS, Category: "fire"}
	if d := r.Route(fire); d.Agency != "damkar" {
		t.Fatalf("initial routing: %+v", d)
	}

	write(strings.Replace(small, "fire: {agency: damkar", "fire: {agency: polisi", 1))
	if err := r.ReloadRouting(ctx); err != nil {
		t.Fatalf("reload a good file: %v", err)
	}
	if d := r.Route(fire); d.Agency != "polisi" {
		t.Errorf("after reload: %+v", d)
	}
	good := r.RoutingStatus(ctx)

	bad := strings.Replace(small, "water: {agency: pdam", "water: {agency: pdma", 1)
	write(bad)
	err = r.Reload(ctx)
	if hub.ErrorCode(err) != hub.CodeInvalid || !strings.Contains(hub.ErrorMessage(err), "line 18") || !strings.Contains(hub.ErrorMessage(err), "pdma") {
		t.Errorf("reload a bad file: %v (message %q), want invalid naming line 18", err, hub.ErrorMessage(err))
	}
	if d := r.Route(fire); d.Agency != "polisi" {
		t.Errorf("after a refused reload: %+v, want the previous table", d)
	}
	st := r.RoutingStatus(ctx)
	if st.LastErrorLine != 18 || st.LastError == "" || st.LastErrorAt == nil || st.Checksum != good.Checksum || st.Agencies != 4 {
		t.Errorf("status after a refused reload %+v", st)
	}
	if v := gauge(t, reg, "kentongan_hub_routing_config_valid"); v != 0 {
		t.Errorf("config_valid = %v after a refused reload", v)
	}
	if len(reloads) != 2 || reloads[0] != nil || reloads[1] == nil {
		t.Errorf("OnReload calls %v", reloads)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(ctx); hub.ErrorCode(err) != hub.CodeUnavailable {
		t.Errorf("reload a missing file: %v, want unavailable", err)
	}

	write(small)
	if err := r.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if st := r.RoutingStatus(ctx); st.LastError != "" || st.Checksum == good.Checksum {
		t.Errorf("status after the fix: %+v", st)
	}
	if v := gauge(t, reg, "kentongan_hub_routing_config_valid"); v != 1 {
		t.Errorf("config_valid = %v after the fix", v)
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// TestWatchReloadsChangedFile: the router notices an edited file without being asked.
func TestWatchReloadsChangedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "routing.yaml")
	if err := os.WriteFile(path, []byte(small), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := route.New(route.Options{Path: path, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Watch(ctx, 10*time.Millisecond)
	}()
	defer func() {
		cancel()
		<-done
	}()
	// A different size, so that a file system with coarse modification times sees it too.
	changed := strings.Replace(small, "fire: {agency: damkar", "fire: {agency: polisi", 1) + "# edited\n"
	if err := os.WriteFile(path, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	poll.True(t, 10*time.Second, "the edited file in force", func() bool {
		return r.Route(route.Input{Source: mqtt.SourceSMS, Category: "fire"}).Agency == "polisi"
	})
}

func TestNewRefusesBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "routing.yaml")
	if err := os.WriteFile(path, []byte("agencies: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := route.New(route.Options{Path: path, Logger: quiet}); !errors.Is(err, route.ErrInvalid) {
		t.Errorf("New with a bad file: %v", err)
	}
	if _, err := route.New(route.Options{Path: filepath.Join(t.TempDir(), "none.yaml"), Logger: quiet}); err == nil {
		t.Errorf("New with a missing file: no error")
	}
	r, err := route.New(route.Options{Logger: quiet})
	if err != nil || r.Reload(context.Background()) != nil || len(r.Agencies(context.Background())) < 10 {
		t.Errorf("built-in router: %v", err)
	}
}
