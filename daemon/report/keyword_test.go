package report

import "testing"

func TestDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"DARURAT", "DARURAT", 0},
		{"DARURT", "DARURAT", 1},   // deletion
		{"DARURATT", "DARURAT", 1}, // insertion
		{"DARUTAT", "DARURAT", 1},  // substitution
		{"DARUART", "DARURAT", 1},  // transposition
		{"DRURT", "DARURAT", 2},
		{"", "API", 3},
		{"ÄPI", "API", 1}, // runes, not bytes
		{"CA", "ABC", 3},  // optimal string alignment: no edit of a transposed pair
	}
	for _, tt := range tests {
		if got := distance(tt.a, tt.b, 10); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := distance(tt.b, tt.a, 10); got != tt.want {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.b, tt.a, got, tt.want)
		}
	}
	// Above max, the answer is max+1, however far apart the words are.
	if got := distance("KEBAKARAN", "API", 1); got != 2 {
		t.Errorf("distance with max 1 = %d, want 2", got)
	}
	if got := distance("ABCDEF", "UVWXYZ", 1); got != 2 {
		t.Errorf("distance with max 1 = %d, want 2", got)
	}
}

// TestKeywordsUnambiguous checks that no word can be read as two keywords that mean different
// things: for that, two keywords would have to be within the sum of their tolerances.
func TestKeywordsUnambiguous(t *testing.T) {
	meaning := func(k keyword) string { return string(k.kind) + "/" + k.category }
	check := func(name string, table []keyword) {
		for i, a := range table {
			for _, b := range table[i+1:] {
				if a.word == b.word {
					t.Errorf("%s: %s is listed twice", name, a.word)
				}
				if meaning(a) == meaning(b) {
					continue
				}
				if d, limit := distance(a.word, b.word, 10), tolerance(a.word)+tolerance(b.word); d <= limit {
					t.Errorf("%s: %s and %s are %d edits apart, so a typo could be either", name, a.word, b.word, d)
				}
			}
		}
	}
	check("commands", commands)
	// A category follows DARURAT or LAPOR, and either table is looked up there.
	check("categories", append(append([]keyword(nil), emergencyCategories...), reportCategories...))
	for _, table := range [][]keyword{commands, emergencyCategories, reportCategories} {
		for _, k := range table {
			if kw, d := matchKeyword(table, k.word); kw == nil || kw.word != k.word || d != 0 {
				t.Errorf("%s does not match itself", k.word)
			}
		}
	}
}
