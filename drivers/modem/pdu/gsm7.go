package pdu

import "strings"

// esc is the GSM 7-bit escape to the extension table.
const esc = 0x1B

// gsm7Base is the GSM 03.38 default alphabet, indexed by septet. 0x1B is the escape and never
// decodes through this table.
var gsm7Base = [128]rune{
	'@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
	'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', ' ', 'Æ', 'æ', 'ß', 'É',
	' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
	'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
	'¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
	'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
	'¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
	'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
}

// gsm7Ext is the GSM 03.38 extension table (the septet after an escape).
var gsm7Ext = map[byte]rune{
	0x0A: '\f',
	0x14: '^',
	0x28: '{',
	0x29: '}',
	0x2F: '\\',
	0x3C: '[',
	0x3D: '~',
	0x3E: ']',
	0x40: '|',
	0x65: '€',
}

// gsm7Code maps a rune to its septets: one for the default alphabet, two (escape first) for the
// extension table. Built once from the tables above so that the two directions cannot disagree.
var gsm7Code = func() map[rune][]byte {
	m := make(map[rune][]byte, 140)
	for i, r := range gsm7Base {
		if i == esc {
			continue
		}
		m[r] = []byte{byte(i)}
	}
	for c, r := range gsm7Ext {
		m[r] = []byte{esc, c}
	}
	return m
}()

// gsm7Septets returns how many septets r takes in GSM7, or 0 if r is not in the default
// alphabet or its extension table.
func gsm7Septets(r rune) int {
	return len(gsm7Code[r])
}

// GSM7Len returns how many septets s takes in the GSM 7-bit default alphabet, a character of the
// extension table counting two, and whether every character of s is in it. One SMS holds 160.
func GSM7Len(s string) (septets int, ok bool) {
	ok = true
	for _, r := range s {
		n := gsm7Septets(r)
		if n == 0 {
			ok = false
		}
		septets += n
	}
	return septets, ok
}

// encodeGSM7 returns the unpacked septets of text, or false if a rune has no GSM7 code.
func encodeGSM7(text string) ([]byte, bool) {
	out := make([]byte, 0, len(text))
	for _, r := range text {
		c, ok := gsm7Code[r]
		if !ok {
			return nil, false
		}
		out = append(out, c...)
	}
	return out, true
}

// decodeGSM7 turns unpacked septets into text. It never fails: TS 23.038 says a receiver shows an
// escape followed by a code the extension table lacks as the default-alphabet character of that
// code, and the reserved escape-escape (and a dangling escape at the end) as a space.
func decodeGSM7(septets []byte) string {
	var b strings.Builder
	b.Grow(len(septets))
	for i := 0; i < len(septets); i++ {
		s := septets[i] & 0x7F
		if s != esc {
			b.WriteRune(gsm7Base[s])
			continue
		}
		if i+1 >= len(septets) {
			b.WriteRune(' ')
			continue
		}
		i++
		n := septets[i] & 0x7F
		switch r, ok := gsm7Ext[n]; {
		case ok:
			b.WriteRune(r)
		case n == esc:
			b.WriteRune(' ')
		default:
			b.WriteRune(gsm7Base[n])
		}
	}
	return b.String()
}

// crPad is the septet written into 7 spare bits at the end of packed user data: TS 23.038 asks
// for <CR> there so that a receiver counting octets instead of septets does not show an '@'.
const crPad = 0x0D

// packSeptets packs septets into octets, LSB first, after fill zero bits (the padding that puts
// the text on a septet boundary after a user data header). With crPadding, 7 spare bits at the
// end are filled with <CR> instead of zeros.
func packSeptets(septets []byte, fill int, crPadding bool) []byte {
	bits := fill + 7*len(septets)
	out := make([]byte, (bits+7)/8)
	pos := fill
	put := func(s byte) {
		for k := 0; k < 7; k++ {
			if s&(1<<k) != 0 {
				out[pos/8] |= 1 << (pos % 8)
			}
			pos++
		}
	}
	for _, s := range septets {
		put(s & 0x7F)
	}
	if crPadding && len(out)*8-bits == 7 {
		put(crPad)
	}
	return out
}

// unpackSeptets reads n septets from packed starting at bit offset skip. The caller has checked
// that packed holds skip+7n bits; bits beyond them (padding) are never read, so 7 zero fill bits
// at the end do not turn into an '@'.
func unpackSeptets(packed []byte, skip, n int) []byte {
	out := make([]byte, n)
	pos := skip
	for i := range out {
		var s byte
		for k := 0; k < 7; k++ {
			if packed[pos/8]&(1<<(pos%8)) != 0 {
				s |= 1 << k
			}
			pos++
		}
		out[i] = s
	}
	return out
}
