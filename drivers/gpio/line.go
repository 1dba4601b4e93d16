package gpio

import (
	"fmt"
	"strconv"
	"strings"
)

// LineError is an error about one line. It names the chip and the line, because the person
// reading it is a technician at a kiosk with a pin map in one hand and a screwdriver in the
// other. errors.Is sees through it to the sentinel (ErrBusy, ErrNoLine, ...).
type LineError struct {
	Op     string // what was being done: "open input", "wait for edge", ...
	Chip   string // e.g. "gpiochip0"; empty when a named line was found on no chip
	Line   string // the line's name, e.g. "GPIO17"; empty when the line has none
	Offset int    // the line's offset on Chip; -1 when not known
	Err    error
}

func (e *LineError) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteByte(' ')
	}
	if e.Chip != "" {
		b.WriteString(e.Chip)
		b.WriteByte(' ')
	}
	b.WriteString("line")
	if e.Offset >= 0 {
		b.WriteByte(' ')
		b.WriteString(strconv.Itoa(e.Offset))
	}
	if e.Line != "" {
		fmt.Fprintf(&b, " %q", e.Line)
	}
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("unknown error")
	}
	return b.String()
}

func (e *LineError) Unwrap() error { return e.Err }

// NamedChip is a Chip whose lines also have names, as the kernel and the board's device tree
// give them ("GPIO17", "ID_SDA"). A name survives what an offset does not: a kernel update that
// renumbers the chips, or a board whose header is wired to a different controller.
type NamedChip interface {
	Chip
	OpenInByName(name string, opts ...InOption) (PinIn, error)
	OpenOutByName(name string, opts ...OutOption) (PinOut, error)
}

// ParseLineName returns the offset of a conventional line name ("GPIO17" is 17), the inverse of
// LineName.
func ParseLineName(name string) (offset int, ok bool) {
	digits, found := strings.CutPrefix(name, "GPIO")
	if !found || digits == "" || len(digits) > 4 || (len(digits) > 1 && digits[0] == '0') {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// OpenInByName opens the input called name: through c's own names if c is a NamedChip,
// otherwise by the conventional name of an offset (ParseLineName).
func OpenInByName(c Chip, name string, opts ...InOption) (PinIn, error) {
	if nc, ok := c.(NamedChip); ok {
		return nc.OpenInByName(name, opts...)
	}
	offset, ok := ParseLineName(name)
	if !ok {
		return nil, &LineError{Op: "open input", Line: name, Offset: -1, Err: ErrNoLine}
	}
	return c.OpenIn(offset, opts...)
}

// OpenOutByName is OpenInByName for an output.
func OpenOutByName(c Chip, name string, opts ...OutOption) (PinOut, error) {
	if nc, ok := c.(NamedChip); ok {
		return nc.OpenOutByName(name, opts...)
	}
	offset, ok := ParseLineName(name)
	if !ok {
		return nil, &LineError{Op: "open output", Line: name, Offset: -1, Err: ErrNoLine}
	}
	return c.OpenOut(offset, opts...)
}
