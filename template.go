// Package sam embeds template.yaml, the single source of truth for routes, the table, the
// schedule and the mail templates, so that every binary reads the same file the deploy uses.
package sam

import _ "embed"

// Template is the bytes of template.yaml.
//
//go:embed template.yaml
var Template []byte
