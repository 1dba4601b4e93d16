package reply

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kentongan/kentongan/drivers/modem/pdu"
)

// SMSLen is what one SMS holds in the GSM 7-bit default alphabet, in septets. A single character
// outside that alphabet sends the whole message as UCS-2, 70 characters a part, so every text here
// is kept inside it.
const SMSLen = 160

// septets is the length of s in an SMS, s being in the GSM alphabet.
func septets(s string) int {
	n, _ := pdu.GSM7Len(s)
	return n
}

// inGSM7 reports whether r is in the GSM 03.38 default alphabet or its extension table.
func inGSM7(r rune) bool {
	_, ok := pdu.GSM7Len(string(r))
	return ok
}

// lookalikes are characters outside the GSM alphabet that operators' keyboards, word processors
// and copy-paste put into notes, with their GSM stand-ins.
var lookalikes = map[rune]string{
	'‘': "'", '’': "'", '‚': "'", '‛': "'", '′': "'", '`': "'", '´': "'",
	'“': "\"", '”': "\"", '„': "\"", '″': "\"", '«': "\"", '»': "\"",
	'–': "-", '—': "-", '‒': "-", '―': "-", '‐': "-", '‑': "-", '−': "-",
	'…': "...", '•': "-", '·': "-", '×': "x",
	'á': "a", 'â': "a", 'ã': "a", 'ā': "a", 'Á': "A", 'Â': "A", 'Ã': "A", 'À': "A",
	'ê': "e", 'ë': "e", 'ē': "e", 'Ê': "E", 'È': "E", 'Ë': "E",
	'í': "i", 'î': "i", 'ï': "i", 'Í': "I", 'Î': "I", 'Ì': "I",
	'ó': "o", 'ô': "o", 'õ': "o", 'Ó': "O", 'Ô': "O", 'Ò': "O",
	'ú': "u", 'û': "u", 'Ú': "U", 'Û': "U", 'Ù': "U",
	'ç': "c", 'ý': "y", 'ÿ': "y",
}

// clean makes a value fit for the middle of a GSM 7-bit sentence: look-alikes replaced, line
// breaks and other white space made single spaces, and any character the alphabet has no stand-in
// for (an emoji, a script it lacks) dropped.
func clean(s string) string {
	var b strings.Builder
	space := false
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsSpace(r) || unicode.IsControl(r) {
			space = b.Len() > 0
			continue
		}
		var out string
		switch {
		case inGSM7(r):
			out = string(r)
		case lookalikes[r] != "":
			out = lookalikes[r]
		default:
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteString(out)
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

// ellipsis ends a shortened note.
const ellipsis = "..."

// minNote is the shortest part of a note worth sending; a note that cannot keep this much is left
// out, since the resident can ask 112 for it.
const minNote = 20

// withNote builds head + label + note + tail within one SMS, shortening the note (at a word
// boundary when one is near) if it does not fit. Without a note, or without room for one, the
// text is without.
func withNote(without, head, label, note, tail string) string {
	note = strings.TrimRight(clean(note), ".")
	if note == "" {
		return without
	}
	if full := head + label + note + "." + tail; septets(full) <= SMSLen {
		return full
	}
	room := SMSLen - septets(head+label+ellipsis+tail)
	if room < minNote {
		return without
	}
	var b strings.Builder
	used := 0
	for _, r := range note {
		n := septets(string(r))
		if used+n > room {
			break
		}
		b.WriteRune(r)
		used += n
	}
	cut := b.String()
	if i := strings.LastIndexByte(cut, ' '); i >= len(cut)/2 {
		cut = cut[:i]
	}
	return head + label + strings.TrimRight(cut, " .,;:") + ellipsis + tail
}
