//go:build !linux

package main

import "os/exec"

// setParentDeath does nothing where there is no parent-death signal; the
// tests' cleanups kill the child.
func setParentDeath(*exec.Cmd) {}
