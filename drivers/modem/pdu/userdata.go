package pdu

import (
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// Capacities of one part, in septets (GSM7) or UTF-16 code units (UCS2). A concatenation header
// takes 6 octets with an 8-bit reference (7 septets with the fill bit) and 7 octets with a
// 16-bit one (exactly 8 septets).
const (
	maxSeptets   = 160
	maxOctets    = 140
	single7      = maxSeptets
	multi7       = maxSeptets - 7
	multi7Ref16  = maxSeptets - 8
	single16     = maxOctets / 2
	multi16      = (maxOctets - 6) / 2
	multi16Ref16 = (maxOctets - 7) / 2
	maxParts     = 255
)

// Concatenation information element identifiers (TS 23.040 9.2.3.24).
const (
	ieiConcat8  = 0x00
	ieiConcat16 = 0x08
)

// alphabetOf reads the alphabet from a TP-DCS as TS 23.038 section 4 lays the coding groups out.
// Reserved codings are taken as the default alphabet, as the specification tells a receiver to.
func alphabetOf(dcs byte) (a Alphabet, compressed bool) {
	switch dcs >> 4 {
	case 0x0, 0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7: // general data coding, and automatic deletion
		compressed = dcs&0x20 != 0
		switch dcs >> 2 & 3 {
		case 1:
			return Data8, compressed
		case 2:
			return UCS2, compressed
		}
		return GSM7, compressed
	case 0xE: // message waiting indication, store, UCS2
		return UCS2, false
	case 0xF: // data coding / message class
		if dcs&0x04 != 0 {
			return Data8, false
		}
	}
	return GSM7, false
}

// userData is the decoded TP-UD of one part.
type userData struct {
	concat *Concat
	data   []byte
	text   string
}

// readUserData reads TP-UDL and TP-UD, which must end the PDU.
func readUserData(r *reader, udhi bool, a Alphabet) (userData, error) {
	at := r.off
	udl, err := r.byte("user data length")
	if err != nil {
		return userData{}, err
	}
	var ud userData
	if a == GSM7 {
		if udl > maxSeptets {
			return userData{}, r.errorf(at, "user data length %d septets, at most %d", udl, maxSeptets)
		}
		octets := (int(udl)*7 + 7) / 8
		raw, err := r.bytes(octets, "user data")
		if err != nil {
			return userData{}, err
		}
		skip := 0
		if udhi {
			hdr, err := readHeader(raw, at+1)
			if err != nil {
				return userData{}, err
			}
			ud.concat = hdr.concat
			skip = (hdr.octets*8 + 6) / 7
			if skip > int(udl) {
				return userData{}, r.errorf(at, "user data header of %d septets in %d septets of user data", skip, udl)
			}
		}
		ud.data = unpackSeptets(raw, skip*7, int(udl)-skip)
		ud.text = decodeGSM7(ud.data)
	} else {
		if udl > maxOctets {
			return userData{}, r.errorf(at, "user data length %d octets, at most %d", udl, maxOctets)
		}
		raw, err := r.bytes(int(udl), "user data")
		if err != nil {
			return userData{}, err
		}
		skip := 0
		if udhi {
			hdr, err := readHeader(raw, at+1)
			if err != nil {
				return userData{}, err
			}
			ud.concat = hdr.concat
			skip = hdr.octets
		}
		ud.data = raw[skip:]
		if a == UCS2 {
			ud.text = decodeUCS2(ud.data)
		} else {
			ud.text = string(ud.data)
		}
	}
	return ud, r.end()
}

type header struct {
	octets int // including the UDHL octet
	concat *Concat
}

// readHeader parses the user data header at the start of raw (which starts at octet at of the
// PDU). Information elements other than concatenation are skipped. A concatenation element with
// impossible values is ignored, as TS 23.040 tells a receiver to, and so is one saying the
// message has a single part.
func readHeader(raw []byte, at int) (header, error) {
	if len(raw) == 0 {
		return header{}, &MalformedError{Offset: at, What: "user data header indicated but user data is empty"}
	}
	n := 1 + int(raw[0])
	if n > len(raw) {
		return header{}, &MalformedError{Offset: at, What: fmt.Sprintf("user data header length %d exceeds the %d octets of user data", raw[0], len(raw))}
	}
	h := header{octets: n}
	for i := 1; i < n; {
		if i+2 > n {
			return header{}, &MalformedError{Offset: at + i, What: "information element cut off by the end of the user data header"}
		}
		iei, l := raw[i], int(raw[i+1])
		v := raw[i+2 : min(i+2+l, n)]
		if len(v) < l {
			return header{}, &MalformedError{Offset: at + i, What: fmt.Sprintf("information element %02X of %d octets overruns the user data header", iei, l)}
		}
		var c *Concat
		switch {
		case iei == ieiConcat8 && l == 3:
			c = &Concat{Ref: uint16(v[0]), Total: int(v[1]), Seq: int(v[2])}
		case iei == ieiConcat16 && l == 4:
			c = &Concat{Ref: uint16(v[0])<<8 | uint16(v[1]), Total: int(v[2]), Seq: int(v[3]), Ref16: true}
		}
		if c != nil && c.Total > 0 && c.Seq > 0 && c.Seq <= c.Total {
			h.concat = c // the last valid one counts if a sender repeats the element
		}
		i += 2 + l
	}
	if h.concat != nil && h.concat.Total == 1 {
		h.concat = nil
	}
	return h, nil
}

// decodeUCS2 decodes UTF-16BE; lone surrogates and an odd final octet become U+FFFD.
func decodeUCS2(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	s := string(utf16.Decode(u))
	if len(b)%2 != 0 {
		s += string(utf8.RuneError)
	}
	return s
}

func encodeUCS2(text string) []byte {
	u := utf16.Encode([]rune(text))
	out := make([]byte, 2*len(u))
	for i, c := range u {
		out[2*i], out[2*i+1] = byte(c>>8), byte(c)
	}
	return out
}

// isGSM7 reports whether every rune of text has a GSM7 code. An invalid UTF-8 byte reads as
// U+FFFD, which has none, so such text goes out as UCS2 with the replacement character.
func isGSM7(text string) bool {
	for _, r := range text {
		if gsm7Septets(r) == 0 {
			return false
		}
	}
	return true
}

// cost is the size of r in the alphabet's units (septets or UTF-16 code units).
func cost(r rune, a Alphabet) int {
	if a == GSM7 {
		return gsm7Septets(r)
	}
	if n := utf16.RuneLen(r); n > 0 {
		return n
	}
	return 1 // U+FFFD in place of what cannot be encoded
}

// split cuts text into the chunks that go into one part each, on rune boundaries so that an
// escape pair or a surrogate pair is never split.
func split(text string, a Alphabet, ref16 bool) []string {
	single, multi := single7, multi7
	if ref16 {
		multi = multi7Ref16
	}
	if a != GSM7 {
		single, multi = single16, multi16
		if ref16 {
			multi = multi16Ref16
		}
	}
	total := 0
	for _, r := range text {
		total += cost(r, a)
	}
	if total <= single {
		return []string{text}
	}
	chunks := make([]string, 0, total/multi+1)
	start, used := 0, 0
	for i, r := range text {
		c := cost(r, a)
		if used+c > multi {
			chunks = append(chunks, text[start:i])
			start, used = i, 0
		}
		used += c
	}
	return append(chunks, text[start:])
}

// plan picks the alphabet and cuts text into parts.
func plan(text string, forceUCS2, ref16 bool) (Alphabet, []string) {
	a := UCS2
	if !forceUCS2 && isGSM7(text) {
		a = GSM7
	}
	return a, split(text, a, ref16)
}

// Parts reports how many SMS parts EncodeSubmit would produce with the zero SubmitOptions (an
// 8-bit reference) and the alphabet it would use. More than 255 parts means EncodeSubmit would
// return ErrTooLong.
func Parts(text string) (n int, a Alphabet) {
	return PartsWith(text, SubmitOptions{})
}

// PartsWith is Parts for the given options: a 16-bit reference leaves one unit less per part.
func PartsWith(text string, opt SubmitOptions) (n int, a Alphabet) {
	a, chunks := plan(text, false, opt.Ref16)
	return len(chunks), a
}

// buildUserData encodes one chunk with its concatenation header (nil for a single part) and
// returns TP-UDL and TP-UD.
func buildUserData(chunk string, a Alphabet, c *Concat) (byte, []byte) {
	var hdr []byte
	if c != nil {
		if c.Ref16 {
			hdr = []byte{6, ieiConcat16, 4, byte(c.Ref >> 8), byte(c.Ref), byte(c.Total), byte(c.Seq)}
		} else {
			hdr = []byte{5, ieiConcat8, 3, byte(c.Ref), byte(c.Total), byte(c.Seq)}
		}
	}
	if a == GSM7 {
		septets, _ := encodeGSM7(chunk)
		hs := (len(hdr)*8 + 6) / 7
		fill := hs*7 - len(hdr)*8
		return byte(hs + len(septets)), append(hdr, packSeptets(septets, fill, true)...)
	}
	ud := append(hdr, encodeUCS2(chunk)...)
	return byte(len(ud)), ud
}

// encodeParts plans text and builds the user data of every part.
func encodeParts(text string, forceUCS2 bool, ref uint16, ref16 bool) (Alphabet, []userDataOut, error) {
	a, chunks := plan(text, forceUCS2, ref16)
	if len(chunks) > maxParts {
		return a, nil, fmt.Errorf("%w: %d parts, at most %d", ErrTooLong, len(chunks), maxParts)
	}
	out := make([]userDataOut, len(chunks))
	for i, ch := range chunks {
		var c *Concat
		if len(chunks) > 1 {
			c = &Concat{Ref: ref, Total: len(chunks), Seq: i + 1, Ref16: ref16}
		}
		out[i].udl, out[i].ud = buildUserData(ch, a, c)
		out[i].udhi = c != nil
	}
	return a, out, nil
}

type userDataOut struct {
	udhi bool
	udl  byte
	ud   []byte
}
