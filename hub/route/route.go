// Package route decides which agency a ticket goes to and how urgent it is, from a YAML file
// the regency edits (default.yaml is Kabupaten Tangerang's, built in): category → agency and
// priority, overrides per kecamatan or kelurahan, and each agency's units by area. Reports
// without a category go to the 112 operators' triage.
//
// A Table is one parsed file and never changes; a Router holds the table in force and swaps it
// on Reload, refusing an invalid file with the line at fault and keeping the one before.
package route

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kentongan/kentongan/hub"
	"github.com/kentongan/kentongan/hub/yamlkey"
	"github.com/kentongan/kentongan/mqtt"
)

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the built-in configuration, Kabupaten Tangerang's.
func DefaultYAML() []byte { return bytes.Clone(defaultYAML) }

// File is the routing file as written. docs/routing.md describes it.
type File struct {
	Kecamatan     []string        `yaml:"kecamatan"`
	Agencies      []AgencyConfig  `yaml:"agencies"`
	Categories    map[string]Rule `yaml:"categories"`
	Uncategorised *Rule           `yaml:"uncategorised"`
	Default       *Rule           `yaml:"default"`
	Overrides     []Override      `yaml:"overrides"`
}

// AgencyConfig is one entry of "agencies".
type AgencyConfig struct {
	ID      string       `yaml:"id"`
	Name    string       `yaml:"name"`
	Short   string       `yaml:"short"`
	Phone   string       `yaml:"phone"`
	Units   []UnitConfig `yaml:"units"`
	Webhook *Webhook     `yaml:"webhook"`
}

// UnitConfig is one of an agency's units.
type UnitConfig struct {
	ID    string   `yaml:"id"`
	Name  string   `yaml:"name"`
	Areas []string `yaml:"areas"`
}

// Webhook is where an agency's ticket events are posted, and the secret that signs them.
type Webhook struct {
	URL       string `yaml:"url"`
	Secret    string `yaml:"secret"`
	SecretEnv string `yaml:"secret_env"` // the name of an environment variable holding the secret
	// Events are the event kinds posted (hub.EventKind values); none means all.
	Events []string `yaml:"events"`
}

// Rule says where a category goes.
type Rule struct {
	Agency   string       `yaml:"agency"`
	Priority hub.Priority `yaml:"priority"`
}

// Override sends some categories in one area to another agency.
type Override struct {
	Area       string   `yaml:"area"` // "Kecamatan" or "Kecamatan/Kelurahan"
	Categories []string `yaml:"categories"`
	Agency     string   `yaml:"agency"`
	Unit       string   `yaml:"unit"`
}

// ErrInvalid is wrapped by every *Error.
var ErrInvalid = errors.New("invalid routing configuration")

// Error is a mistake in a routing file: where (Line, 0 if unknown, and the dotted Key) and what.
type Error struct {
	Line int
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	switch {
	case e.Line > 0 && e.Key != "":
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Key, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	case e.Key != "":
		return fmt.Sprintf("%s: %s", e.Key, e.Msg)
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return ErrInvalid }

// Table is a parsed, checked routing file.
type Table struct {
	agencies      []hub.Agency // triage first, then in file order
	byID          map[string]int
	webhooks      map[string]Webhook // by agency, with the secret resolved
	units         map[string][]unit  // by agency
	categories    map[string]Rule
	uncategorised Rule
	def           Rule
	overrides     []override
	checksum      string
}

type unit struct {
	id    string
	areas []area
}

type area struct{ kec, kel string } // normalised; kel "" for the whole kecamatan

type override struct {
	area       area
	categories map[string]bool // nil: all
	agency     string
	unit       string
	line       int
}

// Triage is the built-in agency of the 112 operators.
var Triage = hub.Agency{ID: hub.AgencyTriage, Name: "Operator 112 (triase)", Short: "Operator 112", Phone: "112"}

var (
	idPattern       = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
	categoryPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
)

// Parse reads and checks a routing file. getenv looks up secret_env variables (nil: none is
// set). Every mistake is an *Error with the line at fault.
func Parse(data []byte, getenv func(string) string) (*Table, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, syntaxError(err)
	}
	if root.Kind == 0 {
		return nil, &Error{Msg: "the file is empty"}
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, typeError(&root, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &Error{Line: extra.Line, Msg: "more than one YAML document"}
	}
	c := checker{root: &root}
	t := c.build(&f, getenv)
	if c.err != nil {
		return nil, c.err
	}
	sum := sha256.Sum256(data)
	t.checksum = hex.EncodeToString(sum[:])
	return t, nil
}

// Default returns the table of the built-in configuration.
func Default() *Table {
	t, err := Parse(defaultYAML, nil)
	if err != nil {
		// default.yaml is compiled in and a test parses it; this is a build mistake.
		return &Table{agencies: []hub.Agency{Triage}, byID: map[string]int{hub.AgencyTriage: 0},
			uncategorised: Rule{hub.AgencyTriage, hub.PriorityNormal}, def: Rule{hub.AgencyTriage, hub.PriorityNormal}}
	}
	return t
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

func lineIn(msg string) int {
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

func syntaxError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := lineIn(msg)
	if line > 0 {
		msg = strings.TrimSpace(yamlLine.ReplaceAllString(msg, ""))
		msg = strings.TrimPrefix(msg, ": ")
	}
	return &Error{Line: line, Msg: "not valid YAML: " + msg}
}

// typeError turns yaml.v3's "line 7: field lisen not found in type route.Rule" into an *Error
// naming the key. Only the first problem is reported: one fix at a time is what people do.
func typeError(root *yaml.Node, err error) error {
	te, ok := errors.AsType[*yaml.TypeError](err)
	if !ok || len(te.Errors) == 0 {
		return syntaxError(err)
	}
	e := te.Errors[0]
	line := lineIn(e)
	what := strings.TrimSpace(strings.TrimPrefix(yamlLine.ReplaceAllString(e, ""), ":"))
	if strings.HasPrefix(what, "field ") && strings.Contains(what, " not found in type ") {
		what = "unknown key"
	}
	return &Error{Line: line, Key: yamlkey.AtLine(root, line), Msg: what}
}

// checker builds a Table, keeping the first mistake with its line.
type checker struct {
	root *yaml.Node
	err  *Error
}

// at finds the node at a path of mapping keys (string) and sequence indexes (int); for a
// mapping key it returns the value node. nil when the path is not in the file.
func (c *checker) at(path ...any) *yaml.Node {
	n := c.root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, p := range path {
		if n == nil {
			return nil
		}
		switch p := p.(type) {
		case string:
			var next *yaml.Node
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == p {
						next = n.Content[i+1]
						break
					}
				}
			}
			n = next
		case int:
			if n.Kind != yaml.SequenceNode || p >= len(n.Content) {
				return nil
			}
			n = n.Content[p]
		}
	}
	return n
}

// fail records a mistake at path unless one is recorded already.
func (c *checker) fail(msg string, path ...any) {
	if c.err != nil {
		return
	}
	e := &Error{Msg: msg, Key: dotted(path)}
	if n := c.at(path...); n != nil {
		e.Line = n.Line
	} else {
		// The key is missing: point at the entry that lacks it.
		for i := len(path) - 1; i >= 0 && e.Line == 0; i-- {
			if n := c.at(path[:i]...); n != nil {
				e.Line = n.Line
			}
		}
	}
	c.err = e
}

func dotted(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch p := p.(type) {
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p)
		case int:
			fmt.Fprintf(&b, "[%d]", p)
		}
	}
	return b.String()
}

// norm makes names compare as people mean them: "Sepatan  timur" is "Sepatan Timur".
func norm(s string) string {
	return strings.ToLower(strings.Join(strings.Fields(s), " "))
}

func (c *checker) build(f *File, getenv func(string) string) *Table {
	t := &Table{
		agencies:   []hub.Agency{Triage},
		byID:       map[string]int{hub.AgencyTriage: 0},
		webhooks:   map[string]Webhook{},
		units:      map[string][]unit{},
		categories: map[string]Rule{},
	}
	kecamatan := map[string]bool{}
	for i, k := range f.Kecamatan {
		n := norm(k)
		switch {
		case n == "" || strings.Contains(n, "/"):
			c.fail(fmt.Sprintf("%q is not a kecamatan name", k), "kecamatan", i)
		case kecamatan[n]:
			c.fail(fmt.Sprintf("%q is listed twice", k), "kecamatan", i)
		}
		kecamatan[n] = true
	}
	parseArea := func(s string, path ...any) area {
		kec, kel, _ := strings.Cut(s, "/")
		a := area{norm(kec), norm(kel)}
		switch {
		case a.kec == "":
			c.fail("an area names a kecamatan, or a kecamatan/kelurahan", path...)
		case len(kecamatan) > 0 && !kecamatan[a.kec]:
			c.fail(fmt.Sprintf("%q is not one of the kecamatan listed under \"kecamatan\"", strings.TrimSpace(kec)), path...)
		case strings.Contains(s, "/") && a.kel == "":
			c.fail(fmt.Sprintf("%q: the kelurahan after \"/\" is missing", s), path...)
		}
		return a
	}

	for i, ac := range f.Agencies {
		p := []any{"agencies", i}
		switch {
		case !idPattern.MatchString(ac.ID):
			c.fail(fmt.Sprintf("agency id %q must be 1–64 of a-z, 0-9 and -", ac.ID), append(p, "id")...)
		case ac.ID == hub.AgencyTriage:
			c.fail(fmt.Sprintf("%q is built in; give the agency another id", hub.AgencyTriage), append(p, "id")...)
		case t.hasAgency(ac.ID):
			c.fail(fmt.Sprintf("agency id %q is used twice", ac.ID), append(p, "id")...)
		case strings.TrimSpace(ac.Name) == "":
			c.fail("missing", append(p, "name")...)
		}
		a := hub.Agency{ID: ac.ID, Name: strings.TrimSpace(ac.Name), Short: strings.TrimSpace(ac.Short), Phone: ac.Phone}
		if a.Short == "" {
			a.Short = a.Name
		}
		seen := map[string]bool{}
		for j, uc := range ac.Units {
			up := append(slices.Clone(p), "units", j)
			switch {
			case !idPattern.MatchString(uc.ID):
				c.fail(fmt.Sprintf("unit id %q must be 1–64 of a-z, 0-9 and -", uc.ID), append(up, "id")...)
			case seen[uc.ID]:
				c.fail(fmt.Sprintf("unit id %q is used twice in agency %s", uc.ID, ac.ID), append(up, "id")...)
			case len(uc.Areas) == 0:
				c.fail("a unit serves at least one area", append(up, "areas")...)
			}
			seen[uc.ID] = true
			u := unit{id: uc.ID}
			for k, s := range uc.Areas {
				u.areas = append(u.areas, parseArea(s, append(up, "areas", k)...))
			}
			t.units[ac.ID] = append(t.units[ac.ID], u)
			a.Units = append(a.Units, hub.Unit{ID: uc.ID, Name: cmp.Or(strings.TrimSpace(uc.Name), uc.ID), Areas: slices.Clone(uc.Areas)})
		}
		if w := ac.Webhook; w != nil {
			wp := append(slices.Clone(p), "webhook")
			u, err := url.Parse(w.URL)
			switch {
			case w.URL == "":
				c.fail("missing", append(wp, "url")...)
			case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
				c.fail(fmt.Sprintf("%q is not an http:// or https:// URL", w.URL), append(wp, "url")...)
			case w.Secret != "" && w.SecretEnv != "":
				c.fail("give secret or secret_env, not both", append(wp, "secret_env")...)
			case w.Secret == "" && w.SecretEnv == "":
				c.fail("a webhook needs a secret (or secret_env naming a variable that holds it)", wp...)
			}
			resolved := *w
			if w.SecretEnv != "" {
				resolved.Secret = getenv(w.SecretEnv)
				if resolved.Secret == "" {
					c.fail(fmt.Sprintf("environment variable %s is not set or empty", w.SecretEnv), append(wp, "secret_env")...)
				}
			}
			for k, ev := range w.Events {
				if !knownEventKinds[hub.EventKind(ev)] {
					c.fail(fmt.Sprintf("unknown event kind %q", ev), append(wp, "events", k)...)
				}
			}
			t.webhooks[ac.ID] = resolved
			a.Webhook = true
		}
		t.byID[ac.ID] = len(t.agencies)
		t.agencies = append(t.agencies, a)
	}

	checkRule := func(r Rule, path ...any) {
		switch {
		case r.Agency == "":
			c.fail("missing", append(path, "agency")...)
		case !t.hasAgency(r.Agency):
			c.fail(fmt.Sprintf("agency %q is not defined under \"agencies\"", r.Agency), append(path, "agency")...)
		case r.Priority != hub.PriorityEmergency && r.Priority != hub.PriorityNormal:
			c.fail(fmt.Sprintf("priority %q is neither %q nor %q", r.Priority, hub.PriorityEmergency, hub.PriorityNormal), append(path, "priority")...)
		}
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range f.Categories {
			if !yield(k) {
				return
			}
		}
	}) {
		if !categoryPattern.MatchString(name) {
			c.fail(fmt.Sprintf("category %q must be lower case: a-z, 0-9 and _", name), "categories", name)
		}
		checkRule(f.Categories[name], "categories", name)
		t.categories[name] = f.Categories[name]
	}
	t.uncategorised = Rule{hub.AgencyTriage, hub.PriorityNormal}
	if f.Uncategorised != nil {
		checkRule(*f.Uncategorised, "uncategorised")
		t.uncategorised = *f.Uncategorised
	}
	t.def = Rule{hub.AgencyTriage, hub.PriorityNormal}
	if f.Default != nil {
		checkRule(*f.Default, "default")
		t.def = *f.Default
	}

	for i, o := range f.Overrides {
		p := []any{"overrides", i}
		ov := override{area: parseArea(o.Area, append(p, "area")...), agency: o.Agency, unit: o.Unit, line: c.lineOf(p...)}
		if len(o.Categories) > 0 {
			ov.categories = map[string]bool{}
			for j, cat := range o.Categories {
				if !categoryPattern.MatchString(cat) {
					c.fail(fmt.Sprintf("category %q must be lower case: a-z, 0-9 and _", cat), append(p, "categories", j)...)
				}
				ov.categories[cat] = true
			}
		}
		switch {
		case o.Agency == "":
			c.fail("missing", append(p, "agency")...)
		case !t.hasAgency(o.Agency):
			c.fail(fmt.Sprintf("agency %q is not defined under \"agencies\"", o.Agency), append(p, "agency")...)
		case o.Unit != "" && !t.hasUnit(o.Agency, o.Unit):
			c.fail(fmt.Sprintf("agency %s has no unit %q", o.Agency, o.Unit), append(p, "unit")...)
		}
		t.overrides = append(t.overrides, ov)
	}
	return t
}

func (c *checker) lineOf(path ...any) int {
	if n := c.at(path...); n != nil {
		return n.Line
	}
	return 0
}

var knownEventKinds = map[hub.EventKind]bool{
	hub.EventStatus: true, hub.EventReassigned: true, hub.EventMerged: true, hub.EventFalseAlarm: true,
	hub.EventConfirmRequested: true, hub.EventConfirmation: true, hub.EventBreach: true,
}

func (t *Table) hasAgency(id string) bool {
	_, ok := t.byID[id]
	return ok
}

func (t *Table) hasUnit(agency, id string) bool {
	for _, u := range t.units[agency] {
		if u.id == id {
			return true
		}
	}
	return false
}

// Input is what routing looks at.
type Input struct {
	Source    string // mqtt.SourceButton, SourceSMS, SourceTamper
	Category  string // "" when the report names none
	Emergency bool   // the reporter said it is one (DARURAT)
	Test      bool   // a self-test: never routed
	Site      hub.Site
}

// Decision is where a ticket goes.
type Decision struct {
	Agency   string
	Unit     string
	Priority hub.Priority
	// Rule says how it was decided, for logs: "category fire", "override line 12", ...
	Rule string
}

// Route decides an incident's agency, unit and priority. A button press is an emergency, and
// so is a report its sender calls one, whatever the category's rule says.
func (t *Table) Route(in Input) Decision {
	if in.Test {
		return Decision{Agency: hub.AgencyTriage, Priority: hub.PriorityNormal, Rule: "test"}
	}
	var (
		rule Rule
		how  string
	)
	cat := in.Category
	switch r, ok := t.categories[cat]; {
	case in.Source == mqtt.SourceTamper:
		// An opened enclosure is the technicians' business, through the operators.
		rule, how = Rule{hub.AgencyTriage, hub.PriorityNormal}, "tamper"
	case cat == "":
		rule, how = t.uncategorised, "uncategorised"
	case ok:
		rule, how = r, "category "+cat
	default:
		rule, how = t.def, "default"
	}
	d := Decision{Agency: rule.Agency, Priority: rule.Priority, Rule: how}
	if in.Source == mqtt.SourceButton || in.Emergency {
		d.Priority = hub.PriorityEmergency
	}
	if cat != "" && in.Source != mqtt.SourceTamper {
		if o := t.override(cat, in.Site); o != nil {
			d.Agency, d.Unit, d.Rule = o.agency, o.unit, fmt.Sprintf("%s, override at line %d", how, o.line)
		}
	}
	if d.Unit == "" {
		d.Unit = t.UnitFor(d.Agency, in.Site)
	}
	return d
}

// override returns the most specific override for a category at a site, the first in the file
// among equals.
func (t *Table) override(cat string, site hub.Site) *override {
	kec, kel := norm(site.Kecamatan), norm(site.Kelurahan)
	if kec == "" {
		return nil
	}
	var best *override
	for i := range t.overrides {
		o := &t.overrides[i]
		if o.categories != nil && !o.categories[cat] {
			continue
		}
		if o.area.kec != kec || (o.area.kel != "" && o.area.kel != kel) {
			continue
		}
		if best == nil || (best.area.kel == "" && o.area.kel != "") {
			best = o
		}
	}
	return best
}

// UnitFor returns the unit of agency that serves site: one naming its kelurahan first, then
// one naming its kecamatan; "" when none does.
func (t *Table) UnitFor(agency string, site hub.Site) string {
	kec, kel := norm(site.Kecamatan), norm(site.Kelurahan)
	if kec == "" {
		return ""
	}
	whole := ""
	for _, u := range t.units[agency] {
		for _, a := range u.areas {
			switch {
			case a.kec != kec:
			case a.kel != "" && a.kel == kel:
				return u.id
			case a.kel == "" && whole == "":
				whole = u.id
			}
		}
	}
	return whole
}

// Agencies lists the agencies, triage first.
func (t *Table) Agencies() []hub.Agency {
	out := make([]hub.Agency, len(t.agencies))
	for i, a := range t.agencies {
		a.Units = slices.Clone(a.Units)
		out[i] = a
	}
	return out
}

// Agency returns one agency by ID.
func (t *Table) Agency(id string) (hub.Agency, bool) {
	i, ok := t.byID[id]
	if !ok {
		return hub.Agency{}, false
	}
	return t.agencies[i], true
}

// Webhook returns an agency's webhook, its secret resolved.
func (t *Table) Webhook(agency string) (Webhook, bool) {
	w, ok := t.webhooks[agency]
	return w, ok
}

// Wants reports whether a webhook posts events of kind k.
func (w Webhook) Wants(k hub.EventKind) bool {
	return len(w.Events) == 0 || slices.Contains(w.Events, string(k))
}

// Checksum is the SHA-256 of the file the table was parsed from, hex.
func (t *Table) Checksum() string { return t.checksum }
