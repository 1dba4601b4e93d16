package yamlkey_test

import (
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kentongan/kentongan/hub/yamlkey"
)

func TestAtLine(t *testing.T) {
	const doc = `http:
  listen: ":8080"
devices:
  - id: ciakar-rw03
    site:
      rw: "03"
  - id: kutabumi-rw07
tags: [a, b]
list:
  - x
`
	var root yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &root); err != nil {
		t.Fatal(err)
	}
	for line, want := range map[int]string{
		1: "http", 2: "http.listen", 3: "devices", 4: "devices[0].id", 6: "devices[0].site.rw",
		7: "devices[1].id", 8: "tags[0]", 10: "list[0]", 11: "", // the deepest: an inline list's first item
	} {
		if got := yamlkey.AtLine(&root, line); got != want {
			t.Errorf("line %d: %q, want %q", line, got, want)
		}
	}
}
