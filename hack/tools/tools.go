//go:build tools

// Package tools pins the developer tools (the linter) apart from the product's
// module so that their dependencies never reach vendor/.
package tools

import (
	_ "honnef.co/go/tools/cmd/staticcheck"
)
