// Package yamlkey names the configuration key on a line of a YAML document, so that an error
// yaml.v3 reports by line number ("line 12: cannot unmarshal …") can say which key is wrong.
package yamlkey

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// AtLine returns the dotted path ("devices[0].site.rw") of the deepest key, or sequence item,
// on a line of the document rooted at n; "" when no key starts on that line.
func AtLine(n *yaml.Node, line int) string {
	best, bestDepth := "", -1
	var walk func(n *yaml.Node, path string, depth int)
	walk = func(n *yaml.Node, path string, depth int) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, path, depth)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				p := k.Value
				if path != "" {
					p = path + "." + k.Value
				}
				if k.Line == line && depth > bestDepth {
					best, bestDepth = p, depth
				}
				walk(v, p, depth+1)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				p := fmt.Sprintf("%s[%d]", path, i)
				if c.Kind == yaml.ScalarNode && c.Line == line && depth > bestDepth {
					best, bestDepth = p, depth
				}
				walk(c, p, depth+1)
			}
		}
	}
	walk(n, "", 0)
	return best
}
