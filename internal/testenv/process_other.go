//go:build !linux

package testenv

import (
	"os/exec"
)

// setParentDeathSignal does nothing here: only Linux has the parent-death signal.
// Servers started by a test binary that is killed outright stay behind; Main stops them
// on every ordinary exit.
func setParentDeathSignal(cmd *exec.Cmd) {}
