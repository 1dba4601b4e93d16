package pdu

import (
	"fmt"
	"time"
)

// sctsLen is the length of a TP-SCTS (and of an absolute validity period).
const sctsLen = 7

// maxQuarters is the largest zone offset a TP-SCTS can carry: a tens digit of 0..7 in quarter
// hours.
const maxQuarters = 79

// readSCTS reads a service-centre timestamp: seven swapped BCD octets, the last one the offset
// from UTC in quarter hours with the sign in bit 3 of its swapped tens digit.
func readSCTS(r *reader) (time.Time, error) {
	at := r.off
	b, err := r.bytes(sctsLen, "timestamp")
	if err != nil {
		return time.Time{}, err
	}
	var v [6]int
	names := [6]string{"year", "month", "day", "hour", "minute", "second"}
	for i := range v {
		lo, hi := int(b[i]&0x0F), int(b[i]>>4)
		if lo > 9 || hi > 9 {
			return time.Time{}, &MalformedError{Offset: at + i, What: fmt.Sprintf("timestamp %s octet %02X is not BCD", names[i], b[i])}
		}
		v[i] = lo*10 + hi
	}
	year, month, day := century(v[0]), v[1], v[2]
	if month < 1 || month > 12 {
		return time.Time{}, &MalformedError{Offset: at + 1, What: fmt.Sprintf("timestamp month %d", month)}
	}
	if day < 1 || day > daysIn(year, time.Month(month)) {
		return time.Time{}, &MalformedError{Offset: at + 2, What: fmt.Sprintf("timestamp day %d of %d-%02d", day, year, month)}
	}
	if v[3] > 23 || v[4] > 59 || v[5] > 59 {
		return time.Time{}, &MalformedError{Offset: at + 3, What: fmt.Sprintf("timestamp time %02d:%02d:%02d", v[3], v[4], v[5])}
	}
	tz := b[6]
	tens, units := int(tz&0x07), int(tz>>4)
	if units > 9 {
		return time.Time{}, &MalformedError{Offset: at + 6, What: fmt.Sprintf("timestamp zone octet %02X is not BCD", tz)}
	}
	q := tens*10 + units
	if tz&0x08 != 0 {
		q = -q
	}
	return time.Date(year, time.Month(month), day, v[3], v[4], v[5], 0, quarterZone(q)), nil
}

// century places a two-digit SCTS year: SMS began in the 1990s, so 90..99 are 1990s and the
// rest this century.
func century(yy int) int {
	if yy >= 90 {
		return 1900 + yy
	}
	return 2000 + yy
}

func daysIn(year int, m time.Month) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// quarterZone is the fixed zone of an SCTS offset, named like "+0700" so that logs show the
// offset the network sent.
func quarterZone(q int) *time.Location {
	sign, a := '+', q
	if q < 0 {
		sign, a = '-', -q
	}
	return time.FixedZone(fmt.Sprintf("%c%02d%02d", sign, a/4, a%4*15), q*15*60)
}

// scts encodes ts in its own zone, truncated to the quarter hour the field can carry (the
// instant is kept: the wall clock is that of the truncated zone).
func scts(ts time.Time) ([]byte, error) {
	_, off := ts.Zone()
	q := off / (15 * 60)
	if q > maxQuarters || q < -maxQuarters {
		return nil, fmt.Errorf("timestamp zone offset %ds is beyond ±%d quarter hours", off, maxQuarters)
	}
	ts = ts.In(quarterZone(q))
	if y := ts.Year(); y < 1990 || y > 2089 {
		return nil, fmt.Errorf("timestamp year %d: two digits carry 1990..2089 only", y)
	}
	swap := func(n int) byte { return byte(n%10)<<4 | byte(n/10) }
	out := []byte{
		swap(ts.Year() % 100), swap(int(ts.Month())), swap(ts.Day()),
		swap(ts.Hour()), swap(ts.Minute()), swap(ts.Second()),
	}
	tz := swap(max(q, -q))
	if q < 0 {
		tz |= 0x08
	}
	return append(out, tz), nil
}
