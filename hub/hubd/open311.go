package hubd

import (
	"context"
	"os"

	"gopkg.in/yaml.v3"

	"github.com/kentongan/kentongan/hub"
	hubhttp "github.com/kentongan/kentongan/hub/http"
	"github.com/kentongan/kentongan/hub/ingest"
	"github.com/kentongan/kentongan/hub/route"
)

// requests is Open311's way into the hub: the routing categories as services, and filing
// through ingest.
type requests struct {
	routes *route.Router
	svc    *ingest.Service
	log    func(msg string, args ...any)
}

var _ hubhttp.RequestService = requests{}

// Categories lists the categories of the routing file, in file order, each with the agency and
// priority the configuration in force gives it. The routing table keeps its categories to
// itself, so the names come from the file.
func (q requests) Categories(ctx context.Context) []hubhttp.Category {
	data := route.DefaultYAML()
	if p := q.routes.RoutingStatus(ctx).Path; p != "" {
		var err error
		if data, err = os.ReadFile(p); err != nil {
			q.log("open311: routing file unreadable; no services offered", "path", p, "err", err)
			return nil
		}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil || len(root.Content) == 0 {
		q.log("open311: routing file unreadable; no services offered", "err", err)
		return nil
	}
	var out []hubhttp.Category
	doc := root.Content[0]
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value != "categories" {
			continue
		}
		cats := doc.Content[i+1]
		for j := 0; j+1 < len(cats.Content); j += 2 {
			code := cats.Content[j].Value
			d := q.routes.Route(route.Input{Source: hubhttp.SourceOpen311, Category: code})
			out = append(out, hubhttp.Category{Code: code, Agency: d.Agency, Priority: d.Priority})
		}
	}
	return out
}

// FileRequest implements hubhttp.RequestService.
func (q requests) FileRequest(ctx context.Context, nt hub.NewTicket) (*hub.Ticket, error) {
	return q.svc.FileRequest(ctx, nt)
}
