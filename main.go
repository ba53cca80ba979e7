// Command manager runs Centaur Workflows on Kubernetes: the WorkflowRun controller (the durable
// engine), the other controllers, and the HTTP API for webhooks and REST calls, in one process.
// Its flags and wiring live in package manager, so that a program of your own can run the same
// manager with your workflows added.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/centaur-dev/workflow-operator/manager"
)

func main() {
	var o manager.Options
	manager.BindFlags(flag.CommandLine, &o)
	flag.Parse()
	if err := manager.Run(o); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(1)
	}
}
