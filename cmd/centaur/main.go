// Command centaur is the workflow author's command line: lint workflow files with the
// manager's loaders, print the PYTHONPATH of the api package it carries. See docs/cli.md and
// package internal/cli.
package main

import (
	"os"

	"github.com/centaur-dev/workflow-operator/internal/cli"
)

func main() {
	os.Exit(cli.Main("centaur", os.Args[1:], os.Stdout, os.Stderr))
}
