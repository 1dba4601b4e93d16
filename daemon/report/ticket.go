package report

import (
	"strings"
	"unicode/utf8"
)

// ticketPrefix starts every ticket number the hub gives out ("112-000123").
const ticketPrefix = "112"

// ticketDigits is how many digits the hub pads a ticket's sequence number to.
const ticketDigits = 6

// maxSeqDigits bounds a ticket's sequence number to what an int64 holds.
const maxSeqDigits = 18

// ticketFillers are words people write before a ticket number: "no 123", "nomor tiket 123".
var ticketFillers = map[string]bool{
	"NO": true, "NOMOR": true, "NOMER": true, "NMR": true, "NOMORNYA": true,
	"TIKET": true, "TICKET": true, "TIKETNYA": true,
}

// ParseTicketNumber reads a ticket number the way people write it ("112-000123", "112-123",
// "112000123", "000123", "123", "#123", "no 123") and returns it as the hub formats it
// ("112-000123"). ok is false when s is anything else.
//
// A run of more than six digits that starts with 112 is read as prefix and sequence, since the
// hub pads sequences to six digits: "112000123" is 112-000123, but "112123" is 112-112123.
func ParseTicketNumber(s string) (number string, ok bool) {
	number, _, end, ok := readTicketNumber(s, 0)
	if !ok || skipSeparators(s, end) != len(s) {
		return "", false
	}
	return number, true
}

// readTicketNumber reads a ticket number at text[pos:]. explicit says it cannot be an ordinary
// count: it has the 112 prefix, six digits, a "#" or a word such as "nomor" before it.
func readTicketNumber(text string, pos int) (number string, explicit bool, end int, ok bool) {
	for range 4 {
		pos = skipSeparators(text, pos)
		for pos < len(text) && text[pos] == '#' {
			explicit = true
			pos = skipSeparators(text, pos+1)
		}
		tok, found := nextToken(text, pos)
		if !found || tok.start != pos || !ticketFillers[tok.upper] {
			break
		}
		explicit = true
		pos = tok.end
	}
	digits, end := digitRun(text, pos)
	if digits == "" {
		return "", false, pos, false
	}
	switch {
	case digits == ticketPrefix:
		// "112-000123", "112 123": the prefix, one separator, the sequence.
		if end < len(text) && strings.IndexByte("-. ", text[end]) >= 0 {
			if seq, e := digitRun(text, end+1); seq != "" {
				digits, end, explicit = seq, e, true
			}
		}
	case len(digits) > ticketDigits && strings.HasPrefix(digits, ticketPrefix):
		digits, explicit = digits[len(ticketPrefix):], true
	case len(digits) >= ticketDigits:
		explicit = true
	}
	if end < len(text) {
		if r, _ := utf8.DecodeRuneInString(text[end:]); isWordRune(r) {
			return "", false, pos, false // "123abc" is not a number
		}
	}
	digits = strings.TrimLeft(digits, "0")
	if digits == "" || len(digits) > maxSeqDigits {
		return "", false, pos, false
	}
	if n := ticketDigits - len(digits); n > 0 {
		digits = strings.Repeat("0", n) + digits
	}
	return ticketPrefix + "-" + digits, explicit, end, true
}

// digitRun returns the ASCII digits at text[pos:] and the offset after them.
func digitRun(text string, pos int) (string, int) {
	end := pos
	for end < len(text) && text[end] >= '0' && text[end] <= '9' {
		end++
	}
	return text[pos:end], end
}
