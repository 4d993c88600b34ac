// Package policy holds Gatehouse's default Rego policies and their tests,
// embedded in the binary. The authz package loads them when no policy.dir or
// policy.bundle is configured.
package policy

import (
	"embed"
	"io/fs"
)

//go:embed *.rego
var files embed.FS

// FS returns the embedded default policies: every .rego file of this
// directory, tests included. The result is read-only and safe for
// concurrent use.
func FS() fs.FS { return files }
