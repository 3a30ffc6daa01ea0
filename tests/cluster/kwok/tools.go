//go:build tools

// Package tools pins the KWOK command built by ../build.sh in go.mod/go.sum.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
