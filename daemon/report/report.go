// Package report reads the SMS reports that RT/RW heads text to a kiosk, normalises the numbers
// they come from, and limits how often one number is heard.
//
// The people who write these texts are neighbourhood heads on old phones, often in a hurry, so the
// grammar is forgiving: keywords are case-insensitive, may carry one typo when they are long enough
// for a typo to be unambiguous, may be followed by any punctuation, and have common synonyms. What
// it cannot read is never dropped: it becomes a report of Kind Unknown that a 112 operator triages.
package report

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind is what a text asks for.
type Kind string

const (
	// Emergency is a report of danger to life or property: DARURAT.
	Emergency Kind = "emergency"
	// NonEmergency is a report for the regency's services: LAPOR.
	NonEmergency Kind = "report"
	// Status asks where a ticket is: STATUS <ticket>.
	Status Kind = "status"
	// Cancel withdraws a ticket: BATAL <ticket>.
	Cancel Kind = "cancel"
	// Help asks for the grammar: INFO, BANTUAN, HELP or "?".
	Help Kind = "help"
	// Confirm is an RT/RW head's answer that a panic-button press the hub asked about is a real
	// emergency: YA <ticket>. The ticket may be left out ("YA"): the hub then takes the latest
	// press it asked this head about.
	Confirm Kind = "confirm"
	// Deny is the answer that it is not: TIDAK <ticket>.
	Deny Kind = "deny"
	// Unknown is a text that follows no command; it still becomes a ticket for operator triage.
	Unknown Kind = "unknown"
)

// Valid reports whether k is one of the kinds Parse returns.
func (k Kind) Valid() bool {
	switch k {
	case Emergency, NonEmergency, Status, Cancel, Help, Unknown, Confirm, Deny:
		return true
	}
	return false
}

// Report is a parsed text.
type Report struct {
	Kind Kind
	// Category is the incident category the hub knows ("fire", "road", ...), or "" for the
	// operator to decide. A NonEmergency report always has one ("other" when none was named).
	Category string
	// Detail is what the sender wrote after the command, category and ticket number: a trimmed
	// substring of the text. For Unknown it is the whole trimmed text.
	Detail string
	// TicketNumber is the ticket a Status, Cancel, Confirm or Deny names, as the hub formats it ("112-000123"),
	// or "" when the text named none.
	TicketNumber string
	// Keyword is the command keyword that matched, spelled correctly in upper case ("DARURAT" for
	// "drurat:"). It is "" when the text had no command: for Unknown, and for an emergency
	// recognised by its category word alone ("KEBAKARAN di RT 03").
	Keyword string
}

// Parse reads an SMS text. It never fails: a text it cannot read is a Report of Kind Unknown with
// the whole text as Detail.
//
// Beyond the documented grammar it is lenient where that errs on the side of safety: a text that
// opens with an emergency category ("KEBAKARAN di RT 03", "Ada maling!", "LAPOR KEBAKARAN ...") is
// an Emergency, and a help keyword followed by more text ("INFO ada kebakaran") is read as that
// text, so that a report is never answered with the help text alone.
func Parse(text string) Report {
	if strings.TrimSpace(text) == "" {
		return Report{Kind: Unknown}
	}
	if r, ok := parseFrom(text, 0, 0); ok {
		return r
	}
	return unknown(text)
}

func unknown(text string) Report {
	return Report{Kind: Unknown, Detail: strings.TrimSpace(text)}
}

// maxDepth bounds re-parsing of the text after a help keyword, so that "HELP HELP HELP ..." costs
// no more than a few passes.
const maxDepth = 2

// parseFrom reads text[pos:] as a command; ok is false when it is none.
func parseFrom(text string, pos, depth int) (Report, bool) {
	if rest := strings.TrimLeftFunc(text[pos:], unicode.IsSpace); strings.HasPrefix(rest, "?") {
		return parseHelp(text, "?", len(text)-len(rest)+1, depth)
	}
	tok, ok := nextToken(text, pos)
	if !ok {
		return Report{}, false
	}
	cmd, dist, end := matchCommand(text, tok)
	if cmd != nil {
		switch cmd.kind {
		case Emergency:
			return parseEmergency(text, cmd.word, end), true
		case NonEmergency:
			return parseNonEmergency(text, cmd.word, end), true
		case Status, Cancel:
			if r, ok := parseTicketCommand(text, cmd, dist, end); ok {
				return r, true
			}
		case Confirm, Deny:
			if r, ok := parseAnswer(text, cmd, dist, end); ok {
				return r, true
			}
		case Help:
			return parseHelp(text, cmd.word, end, depth)
		}
	}
	// A text that opens by naming an emergency is an emergency, with or without DARURAT: someone
	// whose house is burning writes "KEBAKARAN" or "Tolong, ada maling", and must not wait in
	// the normal queue.
	if cat, end := matchCategory(text, pos, emergencyCategories); cat != nil {
		return Report{Kind: Emergency, Category: cat.category, Detail: detail(text, end)}, true
	}
	return Report{}, false
}

func parseEmergency(text, keyword string, pos int) Report {
	r := Report{Kind: Emergency, Keyword: keyword}
	// People in a hurry repeat themselves: "DARURAT DARURAT KEBAKARAN".
	for {
		tok, ok := nextToken(text, pos)
		if !ok {
			break
		}
		if kw, _ := matchKeyword(commands, tok.upper); kw == nil || kw.kind != Emergency {
			break
		}
		pos = tok.end
	}
	if cat, end := matchCategory(text, pos, emergencyCategories, reportCategories); cat != nil {
		r.Category, pos = cat.category, end
	}
	r.Detail = detail(text, pos)
	return r
}

func parseNonEmergency(text, keyword string, pos int) Report {
	// "LAPOR DARURAT KEBAKARAN" is an emergency however it was introduced.
	if tok, ok := nextToken(text, pos); ok {
		if kw, _ := matchKeyword(commands, tok.upper); kw != nil && kw.kind == Emergency {
			return parseEmergency(text, kw.word, tok.end)
		}
	}
	r := Report{Kind: NonEmergency, Keyword: keyword, Category: "other"}
	if cat, end := matchCategory(text, pos, emergencyCategories, reportCategories); cat != nil {
		r.Category, pos = cat.category, end
		if cat.emergency {
			r.Kind = Emergency
		}
	}
	r.Detail = detail(text, pos)
	return r
}

// parseTicketCommand reads STATUS or BATAL. A keyword alone asks about no ticket in particular; a
// keyword followed by text that is no ticket number is not this command, since "Batal panen
// karena banjir" is a report. A keyword read through a typo needs an unmistakable ticket number.
func parseTicketCommand(text string, cmd *keyword, dist, pos int) (Report, bool) {
	r := Report{Kind: cmd.kind, Keyword: cmd.word}
	if skipSeparators(text, pos) == len(text) {
		return r, true
	}
	number, explicit, end, ok := readTicketNumber(text, pos)
	if !ok || (dist > 0 && !explicit) {
		return Report{}, false
	}
	r.TicketNumber = number
	r.Detail = detail(text, end)
	return r, true
}

// parseAnswer reads YA or TIDAK, alone or with a ticket number. "Tidak ada air sejak pagi" and
// "Tidak 3 hari listrik mati" are reports, not answers: a number counts only when it cannot be a
// count (112-000123, #123, "nomor 123") or ends the text.
func parseAnswer(text string, cmd *keyword, dist, pos int) (Report, bool) {
	r, ok := parseTicketCommand(text, cmd, dist, pos)
	if !ok || r.TicketNumber == "" {
		return r, ok
	}
	if _, explicit, _, _ := readTicketNumber(text, pos); !explicit && r.Detail != "" {
		return Report{}, false
	}
	return r, true
}

// parseHelp answers a help keyword at the end of a text. Followed by more, the keyword is more
// likely the Indonesian habit of opening a message with "Info," or "Bantuan": the rest decides.
func parseHelp(text, keyword string, pos, depth int) (Report, bool) {
	if skipSeparators(text, pos) == len(text) {
		return Report{Kind: Help, Keyword: keyword}, true
	}
	if depth >= maxDepth {
		return Report{}, false
	}
	r, ok := parseFrom(text, pos, depth+1)
	if !ok || r.Kind == Help {
		return Report{}, false
	}
	return r, true
}

// matchCategory reads the category word at text[pos:], skipping up to two filler words before it
// ("DARURAT ada kebakaran", "tolong ada maling"). It returns nil when there is none.
func matchCategory(text string, pos int, tables ...[]keyword) (*keyword, int) {
	for range 3 {
		tok, ok := nextToken(text, pos)
		if !ok {
			return nil, pos
		}
		for _, table := range tables {
			if kw, _ := matchKeyword(table, tok.upper); kw != nil {
				return kw, tok.end
			}
		}
		if !fillers[tok.upper] {
			return nil, pos
		}
		pos = tok.end
	}
	return nil, pos
}

// fillers are words people put between a command and its category.
var fillers = map[string]bool{"ADA": true, "TERJADI": true, "TOLONG": true}

// token is a run of letters and digits in a text.
type token struct {
	start, end int    // byte offsets in the text
	upper      string // the token in upper case, for matching
}

// maxTokenLen bounds the bytes upper-cased for one token: no keyword is near as long, so a
// longer token only needs to be known not to match.
const maxTokenLen = 32

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// nextToken returns the first token at or after pos.
func nextToken(text string, pos int) (token, bool) {
	start := -1
	i := pos
	for i < len(text) {
		r, size := utf8.DecodeRuneInString(text[i:])
		if isWordRune(r) {
			if start < 0 {
				start = i
			}
		} else if start >= 0 {
			break
		}
		i += size
	}
	if start < 0 {
		return token{}, false
	}
	t := token{start: start, end: i}
	if i-start <= maxTokenLen {
		t.upper = strings.ToUpper(text[start:i])
	}
	return t, true
}

// skipSeparators returns the offset of the first byte at or after pos that is not white space or
// punctuation between words, or len(text).
func skipSeparators(text string, pos int) int {
	for pos < len(text) {
		r, size := utf8.DecodeRuneInString(text[pos:])
		if !isSeparator(r) {
			return pos
		}
		pos += size
	}
	return pos
}

// isSeparator is white space, or the punctuation people put after a keyword: "DARURAT:",
// "lapor,", "Darurat - kebakaran", "BATAL!!", "status?".
func isSeparator(r rune) bool {
	return unicode.IsSpace(r) || strings.ContainsRune(":;,.-_=/\\!?*~|>", r) || r == '\u2013' || r == '\u2014'
}

// detail is the text from pos on, without the separators that follow a keyword.
func detail(text string, pos int) string {
	return strings.TrimSpace(text[skipSeparators(text, pos):])
}
