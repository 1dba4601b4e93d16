package report

import (
	"strings"
	"unicode/utf8"
)

// keyword is one word of the grammar, in upper case.
type keyword struct {
	word      string
	kind      Kind   // for commands
	category  string // for categories
	emergency bool   // for categories: an emergency category
}

// commands are the words a text starts with. Synonyms beyond the documented grammar are words
// RT/RW heads were seen to use for the same thing.
var commands = []keyword{
	{word: "DARURAT", kind: Emergency},
	{word: "SOS", kind: Emergency},
	{word: "LAPOR", kind: NonEmergency},
	{word: "LAPORAN", kind: NonEmergency},
	{word: "LAPORKAN", kind: NonEmergency},
	{word: "STATUS", kind: Status},
	{word: "CEK", kind: Status},
	{word: "BATAL", kind: Cancel},
	{word: "BATALKAN", kind: Cancel},
	{word: "YA", kind: Confirm},
	{word: "IYA", kind: Confirm},
	{word: "TIDAK", kind: Deny},
	{word: "INFO", kind: Help},
	{word: "BANTUAN", kind: Help},
	{word: "HELP", kind: Help},
}

// emergencyCategories are the categories of DARURAT.
var emergencyCategories = []keyword{
	{word: "KEBAKARAN", category: "fire", emergency: true},
	{word: "API", category: "fire", emergency: true},
	{word: "MEDIS", category: "medical", emergency: true},
	{word: "SAKIT", category: "medical", emergency: true},
	{word: "AMBULANS", category: "medical", emergency: true},
	{word: "AMBULAN", category: "medical", emergency: true},
	{word: "AMBULANCE", category: "medical", emergency: true},
	{word: "KRIMINAL", category: "crime", emergency: true},
	{word: "MALING", category: "crime", emergency: true},
	{word: "BEGAL", category: "crime", emergency: true},
	{word: "RAMPOK", category: "crime", emergency: true},
	{word: "PENCURIAN", category: "crime", emergency: true},
	{word: "BANJIR", category: "disaster", emergency: true},
	{word: "BENCANA", category: "disaster", emergency: true},
	{word: "LONGSOR", category: "disaster", emergency: true},
	{word: "GEMPA", category: "disaster", emergency: true},
	{word: "KECELAKAAN", category: "accident", emergency: true},
	{word: "LAKA", category: "accident", emergency: true},
}

// reportCategories are the categories of LAPOR.
var reportCategories = []keyword{
	{word: "LISTRIK", category: "electricity"},
	{word: "PLN", category: "electricity"},
	{word: "AIR", category: "water"},
	{word: "PDAM", category: "water"},
	{word: "JALAN", category: "road"},
	{word: "JLN", category: "road"},
	{word: "SAMPAH", category: "waste"},
	{word: "ADMINISTRASI", category: "administration"},
	{word: "ADMIN", category: "administration"},
	{word: "KTP", category: "administration"},
	{word: "KK", category: "administration"},
	{word: "SOSIAL", category: "social"},
	{word: "BANSOS", category: "social"},
	{word: "LAINNYA", category: "other"},
	{word: "LAIN", category: "other"},
}

// typoMinLen is the shortest keyword read through a typo: in a shorter word one wrong letter
// makes another word ("API" and "AIR").
const typoMinLen = 5

// tolerance is how many edits a word may be away from keyword w and still be read as w.
func tolerance(w string) int {
	if utf8.RuneCountInString(w) >= typoMinLen {
		return 1
	}
	return 0
}

// matchKeyword returns the keyword of table closest to the upper-case word, with its distance,
// or nil when none is within its tolerance. An exact match wins; among typos, table order.
func matchKeyword(table []keyword, word string) (*keyword, int) {
	if word == "" {
		return nil, 0
	}
	var best *keyword
	bestDist := 0
	for i := range table {
		kw := &table[i]
		if word == kw.word {
			return kw, 0
		}
		tol := tolerance(kw.word)
		if tol == 0 || best != nil {
			continue
		}
		if d := distance(word, kw.word, tol); d <= tol {
			best, bestDist = kw, d
		}
	}
	return best, bestDist
}

// matchCommand reads the command at tok. Besides whole words it splits a command run together
// with what follows it ("DARURATKEBAKARAN", "STATUS123"), but only when the rest is a category or
// a number, so that a word that merely starts like a command is left alone.
func matchCommand(text string, tok token) (cmd *keyword, dist, end int) {
	if kw, d := matchKeyword(commands, tok.upper); kw != nil {
		return kw, d, tok.end
	}
	word := text[tok.start:tok.end]
	for i := range commands {
		kw := &commands[i]
		n := len(kw.word)
		if n < typoMinLen || len(word) <= n || !strings.EqualFold(word[:n], kw.word) || !isASCII(word[:n]) {
			continue
		}
		rest := word[n:]
		switch kw.kind {
		case Status, Cancel:
			if isDigits(rest) {
				return kw, 0, tok.start + n
			}
		case Emergency, NonEmergency:
			up := strings.ToUpper(rest)
			if c, _ := matchKeyword(emergencyCategories, up); c != nil {
				return kw, 0, tok.start + n
			}
			if c, _ := matchKeyword(reportCategories, up); c != nil {
				return kw, 0, tok.start + n
			}
		}
	}
	return nil, 0, tok.end
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// distance is the Damerau-Levenshtein distance between a and b (in its optimal-string-alignment
// form: adjacent transpositions count as one edit, the typo of thumbs on a keypad), counted in
// runes. Any result above max is reported as max+1, so that words of very different lengths cost
// nothing to reject.
func distance(a, b string, max int) int {
	ra, rb := []rune(a), []rune(b)
	if d := len(ra) - len(rb); d > max || -d > max {
		return max + 1
	}
	// Three rows suffice: the transposition looks two rows back.
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			v := min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				v = min(v, prev2[j-2]+1)
			}
			cur[j] = v
			rowMin = min(rowMin, v)
		}
		if rowMin > max {
			return max + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return min(prev[len(rb)], max+1)
}
