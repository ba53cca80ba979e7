// Command kubectl_complete-centaur completes `kubectl centaur ...`: kubectl (1.26 and later)
// runs it with the words typed after `kubectl centaur` when the shell asks for completions, and
// reads the candidates in Cobra's format. Install it on PATH beside kubectl-centaur.
package main

import (
	"os"

	"github.com/centaur-dev/workflow-operator/internal/cli"
)

func main() {
	os.Exit(cli.Main("kubectl centaur", append([]string{cli.KubectlCompleteCommand}, os.Args[1:]...), os.Stdout, os.Stderr))
}
