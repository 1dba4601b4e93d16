package report

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// ErrNotPhoneNumber is returned by NormalizeNumber for a sender that is not a phone number: an
// alphanumeric sender such as an operator's "TELKOMSEL", a short code, or a malformed number.
// Such senders cannot be replied to usefully and are never on an allow-list.
var ErrNotPhoneNumber = errors.New("report: not a phone number")

// Lengths of an Indonesian national significant number (the number after +62): mobile numbers
// have 9 to 12 digits (812 3456 789 to 812 3456 78901), land lines from 7 (a small area code and
// a five-digit subscriber) to 11.
const (
	minNational = 7
	maxNational = 12
	minMobile   = 9
)

// Lengths of an international number in E.164, country code included.
const (
	minE164 = 7
	maxE164 = 15
)

// NormalizeNumber returns a sender's number in international form, "+62812...", so that one phone
// is one sender however the network or a person wrote it. It accepts Indonesian numbers as
// "+62812...", "62812...", "0062812...", "0812..." and "812..." (a mobile number without its
// trunk 0), with spaces, dashes, dots and brackets anywhere; other countries' numbers need "+" or
// "00" and keep their digits.
//
// Anything else returns the input, trimmed, with an error wrapping ErrNotPhoneNumber, so that a
// caller can still log it or count it as a sender.
func NormalizeNumber(s string) (string, error) {
	in := strings.TrimSpace(s)
	var b strings.Builder
	letters := false
	for _, r := range in {
		switch {
		case r >= '0' && r <= '9', r == '+':
			b.WriteRune(r)
		case r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' || r == '\u00a0':
		case unicode.IsLetter(r):
			letters = true
		default:
			return in, fmt.Errorf("%w: %q has a %q", ErrNotPhoneNumber, in, r)
		}
	}
	if letters {
		return in, fmt.Errorf("%w: %q is an alphanumeric sender", ErrNotPhoneNumber, in)
	}
	c := b.String()
	if c == "" {
		return in, fmt.Errorf("%w: %q has no digits", ErrNotPhoneNumber, in)
	}
	international := false
	switch {
	case strings.HasPrefix(c, "+"):
		c, international = c[1:], true
	case strings.HasPrefix(c, "00"):
		c, international = c[2:], true
	}
	if strings.Contains(c, "+") || c == "" {
		return in, fmt.Errorf("%w: %q is malformed", ErrNotPhoneNumber, in)
	}
	var national string
	switch {
	case strings.HasPrefix(c, "62"):
		// "+62 0812..." is a common way to write it too.
		national = strings.TrimPrefix(c[2:], "0")
	case international:
		if len(c) < minE164 || len(c) > maxE164 || c[0] == '0' {
			return in, fmt.Errorf("%w: %q is not an international number", ErrNotPhoneNumber, in)
		}
		return "+" + c, nil
	case strings.HasPrefix(c, "0"):
		national = c[1:]
	case strings.HasPrefix(c, "8") && len(c) >= minMobile:
		national = c
	default:
		// A short code ("3636"), or a number of another country written without "+": which
		// country it is cannot be known.
		return in, fmt.Errorf("%w: %q is not a number in a known form", ErrNotPhoneNumber, in)
	}
	if len(national) < minNational || len(national) > maxNational || national[0] == '0' ||
		(national[0] == '8' && len(national) < minMobile) {
		return in, fmt.Errorf("%w: %q is not an Indonesian number", ErrNotPhoneNumber, in)
	}
	return "+62" + national, nil
}

// AllowList is the set of numbers a kiosk takes reports from. It is not changed after
// NewAllowList, so it is safe for concurrent use.
type AllowList struct {
	numbers map[string]struct{}
}

// NewAllowList normalises numbers into a set. An entry that is not a phone number is an error
// naming it, since a typo in the configuration would otherwise silently lock an RT head out.
// An empty list allows nobody.
func NewAllowList(numbers []string) (*AllowList, error) {
	a := &AllowList{numbers: make(map[string]struct{}, len(numbers))}
	for i, s := range numbers {
		n, err := NormalizeNumber(s)
		if err != nil {
			return nil, fmt.Errorf("allow-list entry %d: %w", i+1, err)
		}
		a.numbers[n] = struct{}{}
	}
	return a, nil
}

// Allowed reports whether number, in any form NormalizeNumber reads, is on the list.
func (a *AllowList) Allowed(number string) bool {
	if a == nil {
		return false
	}
	n, err := NormalizeNumber(number)
	if err != nil {
		return false
	}
	_, ok := a.numbers[n]
	return ok
}

// Len is how many distinct numbers the list holds.
func (a *AllowList) Len() int {
	if a == nil {
		return 0
	}
	return len(a.numbers)
}

// Numbers returns the list's numbers, normalised and sorted.
func (a *AllowList) Numbers() []string {
	if a == nil {
		return nil
	}
	out := make([]string, 0, len(a.numbers))
	for n := range a.numbers {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
