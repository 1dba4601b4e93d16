package pdu

import "fmt"

// Type-of-address octets written by the encoders: extension bit set, numbering plan ISDN/E.164
// (1) for numbers and unknown (0) for alphanumeric senders, as networks send them.
const (
	toaUnknown       = 0x81
	toaInternational = 0x91
	toaNational      = 0xA1
	toaAlphanumeric  = 0xD0
)

// maxDigits is the longest number an address field carries (10 octets of semi-octets).
const maxDigits = 20

// maxAlphaSeptets is the longest alphanumeric sender: 20 semi-octets hold 11 septets.
const maxAlphaSeptets = 11

// semiOctetDigits are the BCD values TS 23.040 allows in a number; 0xF is the filler.
const semiOctetDigits = "0123456789*#abc"

// readAddress reads a TP-OA or TP-DA field, whose length counts useful semi-octets.
func readAddress(r *reader, what string) (Address, error) {
	at := r.off
	n, err := r.byte(what + " length")
	if err != nil {
		return Address{}, err
	}
	if n > maxDigits {
		return Address{}, &MalformedError{Offset: at, What: fmt.Sprintf("%s length %d semi-octets, at most %d", what, n, maxDigits), Err: ErrBadAddress}
	}
	toa, err := r.byte(what + " type")
	if err != nil {
		return Address{}, err
	}
	body, err := r.bytes((int(n)+1)/2, what)
	if err != nil {
		return Address{}, err
	}
	a, err := decodeAddressBody(toa, body, int(n), false)
	if err != nil {
		return Address{}, &MalformedError{Offset: at + 2, What: what + ": " + err.Error(), Err: ErrBadAddress}
	}
	return a, nil
}

// decodeAddressBody decodes the semi-octets (or, for TON 5, the packed septets) of an address.
// For the SMSC the count comes from the octet length, so a final 0xF filler is expected there;
// elsewhere the count is exact and the filler, if any, lies beyond it.
func decodeAddressBody(toa byte, body []byte, semiOctets int, smsc bool) (Address, error) {
	ton := toa >> 4 & 7
	if ton == 5 {
		septets := semiOctets * 4 / 7
		return Address{Number: decodeGSM7(unpackSeptets(body, 0, septets)), Type: TypeAlphanumeric}, nil
	}
	digits := make([]byte, 0, semiOctets+1)
	for i := 0; i < semiOctets; i++ {
		d := body[i/2] >> (4 * (i % 2)) & 0x0F
		if d == 0x0F {
			if smsc && i == semiOctets-1 {
				break
			}
			return Address{}, fmt.Errorf("filler 0xF at digit %d of %d", i+1, semiOctets)
		}
		digits = append(digits, semiOctetDigits[d])
	}
	switch ton {
	case 1:
		return Address{Number: "+" + string(digits), Type: TypeInternational}, nil
	case 2:
		return Address{Number: string(digits), Type: TypeNational}, nil
	}
	return Address{Number: string(digits), Type: TypeUnknown}, nil
}

// parseNumber splits "+62…" or "0812…" into its type of address and digits.
func parseNumber(s string, plain byte) (toa byte, digits string, err error) {
	toa, digits = plain, s
	if len(s) > 0 && s[0] == '+' {
		toa, digits = toaInternational, s[1:]
	}
	if digits == "" {
		return 0, "", fmt.Errorf("%w: empty number %q", ErrBadAddress, s)
	}
	if len(digits) > maxDigits {
		return 0, "", fmt.Errorf("%w: %q has %d digits, at most %d", ErrBadAddress, s, len(digits), maxDigits)
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, "", fmt.Errorf("%w: %q has %q at %d, want digits", ErrBadAddress, s, digits[i], i)
		}
	}
	return toa, digits, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// bcd packs decimal digits as swapped semi-octets, padding an odd count with the 0xF filler.
func bcd(digits string) []byte {
	out := make([]byte, (len(digits)+1)/2)
	for i := 0; i < len(digits); i++ {
		d := digits[i] - '0'
		if i%2 == 0 {
			out[i/2] = 0xF0 | d
		} else {
			out[i/2] = out[i/2]&0x0F | d<<4
		}
	}
	return out
}

// destinationField encodes the TP-DA of a SUBMIT: "+…" international, other digits with an
// unknown type so that the network applies its own dialling rules to "08…" or a short code.
func destinationField(to string) ([]byte, error) {
	toa, digits, err := parseNumber(to, toaUnknown)
	if err != nil {
		return nil, err
	}
	return append([]byte{byte(len(digits)), toa}, bcd(digits)...), nil
}

// originatorField encodes the TP-OA of a DELIVER: "+…" international, digits national, anything
// else an alphanumeric sender of at most 11 GSM7 septets.
func originatorField(from string) ([]byte, error) {
	if from == "" {
		return nil, fmt.Errorf("%w: empty sender", ErrBadAddress)
	}
	if from[0] == '+' || isDigits(from) {
		toa, digits, err := parseNumber(from, toaNational)
		if err != nil {
			return nil, err
		}
		return append([]byte{byte(len(digits)), toa}, bcd(digits)...), nil
	}
	septets, ok := encodeGSM7(from)
	if !ok {
		return nil, fmt.Errorf("%w: alphanumeric sender %q is not in the GSM 7-bit alphabet", ErrBadAddress, from)
	}
	if len(septets) > maxAlphaSeptets {
		return nil, fmt.Errorf("%w: alphanumeric sender %q takes %d septets, at most %d", ErrBadAddress, from, len(septets), maxAlphaSeptets)
	}
	packed := packSeptets(septets, 0, false)
	semi := (7*len(septets) + 3) / 4
	return append([]byte{byte(semi), toaAlphanumeric}, packed...), nil
}

// smscField encodes the SMSC prefix; "" gives the zero length that means "the SIM's SMSC".
func smscField(smsc string) ([]byte, error) {
	if smsc == "" {
		return []byte{0}, nil
	}
	toa, digits, err := parseNumber(smsc, toaUnknown)
	if err != nil {
		return nil, fmt.Errorf("SMSC: %w", err)
	}
	body := bcd(digits)
	return append([]byte{byte(1 + len(body)), toa}, body...), nil
}
