package localstack

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/rollcall/rollcall/internal/samtemplate"
)

// routeTable matches requests to HttpApi routes the way API Gateway HTTP APIs do: {name}
// matches one non-empty segment, {name+} the rest of the path, and the most specific route
// wins (a literal segment beats a variable, a variable beats a greedy one, an exact method
// beats ANY); $default catches the rest. A request path with one trailing slash reaches the
// route without it (/x/ goes to the route /x, with rawPath /x/), and a route whose own path
// ends in "/" is refused, as API Gateway creates no such route (see docs/deploy.md for the
// evidence). It is hand-written rather than an http.ServeMux because ServeMux answers 405s
// and redirects unclean paths, which API Gateway does not do.
type routeTable struct {
	routes []*route
	dflt   *route
}

type route struct {
	function string
	samtemplate.Route
	segs []segment
}

type segKind int

const (
	segLiteral segKind = iota
	segVar
	segGreedy
)

type segment struct {
	kind segKind
	text string // literal text, or the variable name
}

func newRouteTable(tpl *samtemplate.Template) (*routeTable, error) {
	rt := &routeTable{}
	seen := map[string]string{}
	for _, fn := range tpl.Functions() {
		for _, r := range fn.Routes {
			if prev, dup := seen[r.Key()]; dup {
				return nil, fmt.Errorf("route %q is defined by both %s and %s", r.Key(), prev, fn.LogicalID)
			}
			seen[r.Key()] = fn.LogicalID
			ro := &route{function: fn.LogicalID, Route: r}
			if err := CheckRoutePath(r.Path); err != nil {
				return nil, fmt.Errorf("%s: route %q: %w", fn.LogicalID, r.Key(), err)
			}
			if r.Path == samtemplate.DefaultRoute {
				rt.dflt = ro
				continue
			}
			parts := strings.Split(strings.TrimPrefix(r.Path, "/"), "/")
			for i, p := range parts {
				switch {
				case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "+}"):
					if i != len(parts)-1 {
						return nil, fmt.Errorf("route %q: a greedy variable must be the last segment", r.Key())
					}
					ro.segs = append(ro.segs, segment{segGreedy, p[1 : len(p)-2]})
				case strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}"):
					ro.segs = append(ro.segs, segment{segVar, p[1 : len(p)-1]})
				default:
					ro.segs = append(ro.segs, segment{segLiteral, p})
				}
			}
			rt.routes = append(rt.routes, ro)
		}
	}
	return rt, nil
}

// CheckRoutePath refuses a route path that API Gateway HTTP APIs would not create: one that
// ends in "/" (SAM creates the integration and silently no route) or does not start with one.
func CheckRoutePath(path string) error {
	switch {
	case path == samtemplate.DefaultRoute:
		return nil
	case !strings.HasPrefix(path, "/"):
		return errors.New(`a route path must start with "/"`)
	case len(path) > 1 && strings.HasSuffix(path, "/"):
		return errors.New(`API Gateway HTTP APIs create no route whose path ends in "/": declare it without the slash (requests with the slash still reach it)`)
	case strings.Contains(path, "//"):
		return errors.New("a route path has an empty segment")
	}
	return nil
}

// match finds the route for a method and an escaped path (r.URL.EscapedPath()), with its
// path parameters percent-decoded. A path with a trailing slash that no route matches is
// tried again without it, as API Gateway does.
func (rt *routeTable) match(method, escapedPath string) (*route, map[string]string) {
	ro, params := rt.matchExact(method, escapedPath)
	if ro == nil && len(escapedPath) > 1 && strings.HasSuffix(escapedPath, "/") {
		ro, params = rt.matchExact(method, strings.TrimSuffix(escapedPath, "/"))
	}
	if ro == nil && rt.dflt != nil {
		return rt.dflt, nil
	}
	return ro, params
}

func (rt *routeTable) matchExact(method, escapedPath string) (*route, map[string]string) {
	parts := strings.Split(strings.TrimPrefix(escapedPath, "/"), "/")
	var best *route
	var bestParams map[string]string
	for _, ro := range rt.routes {
		if ro.Method != method && ro.Method != "ANY" {
			continue
		}
		params, ok := ro.matchPath(parts)
		if !ok {
			continue
		}
		if best == nil || ro.moreSpecific(best) {
			best, bestParams = ro, params
		}
	}
	return best, bestParams
}

func (ro *route) matchPath(parts []string) (map[string]string, bool) {
	var params map[string]string
	set := func(k, v string) bool {
		dec, err := url.PathUnescape(v)
		if err != nil {
			return false
		}
		if params == nil {
			params = map[string]string{}
		}
		params[k] = dec
		return true
	}
	for i, s := range ro.segs {
		if s.kind == segGreedy {
			rest := strings.Join(parts[i:], "/")
			if i >= len(parts) || rest == "" {
				return nil, false
			}
			return params, set(s.text, rest)
		}
		if i >= len(parts) {
			return nil, false
		}
		switch s.kind {
		case segLiteral:
			dec, err := url.PathUnescape(parts[i])
			if err != nil || dec != s.text {
				return nil, false
			}
		case segVar:
			if parts[i] == "" || !set(s.text, parts[i]) {
				return nil, false
			}
		}
	}
	if len(parts) != len(ro.segs) {
		return nil, false
	}
	return params, true
}

// moreSpecific compares two routes that both match a request.
func (ro *route) moreSpecific(other *route) bool {
	for i := 0; i < len(ro.segs) && i < len(other.segs); i++ {
		if a, b := ro.segs[i].kind, other.segs[i].kind; a != b {
			return a < b
		}
	}
	if len(ro.segs) != len(other.segs) {
		return len(ro.segs) > len(other.segs)
	}
	return ro.Method != "ANY" && other.Method == "ANY"
}
