// Command kubectl-centaur is centaur installed as a kubectl plugin: kubectl finds it on PATH by
// its file name and runs it for `kubectl centaur ...`. It runs the same code as cmd/centaur.
package main

import (
	"os"

	"github.com/centaur-dev/workflow-operator/internal/cli"
)

func main() {
	os.Exit(cli.Main("kubectl centaur", os.Args[1:], os.Stdout, os.Stderr))
}
