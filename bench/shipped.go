package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/centaur-dev/workflow-operator/internal/testcluster"
	"github.com/centaur-dev/workflow-operator/manager"
)

// What config/manager/manager.yaml ships, read from the file so that the benchmark's managers
// run as deployed: the memory limit the flood figure is judged by, and the Go runtime's
// settings every manager the benchmark starts gets.

// managerContainer is the container named manager of the Deployment in
// config/manager/manager.yaml.
func managerContainer() (corev1.Container, error) {
	root, err := testcluster.ModuleRoot()
	if err != nil {
		return corev1.Container{}, err
	}
	path := filepath.Join(root, "config", "manager", "manager.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return corev1.Container{}, fmt.Errorf("read the manager's deployment: %w", err)
	}
	for doc := range strings.SplitSeq(string(data), "\n---") {
		var d appsv1.Deployment
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil || d.Kind != "Deployment" {
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == "manager" {
				return c, nil
			}
		}
	}
	return corev1.Container{}, fmt.Errorf("%s has no Deployment with a container named manager", path)
}

// managerMemoryLimit reads the manager container's memory limit from
// config/manager/manager.yaml, the limit the figure is judged by.
func managerMemoryLimit() (int64, error) {
	c, err := managerContainer()
	if err != nil {
		return 0, err
	}
	q, ok := c.Resources.Limits[corev1.ResourceMemory]
	if !ok {
		return 0, fmt.Errorf("the manager container of config/manager/manager.yaml has no memory limit")
	}
	return q.Value(), nil
}

// shippedRuntimeEnv is the Go runtime's environment of the manager container of
// config/manager/manager.yaml, as the pod would get it: the variables named GO* with a value,
// and manager.MemoryLimitEnv, which the downward API fills with the container's memory limit.
func shippedRuntimeEnv() ([]string, error) {
	c, err := managerContainer()
	if err != nil {
		return nil, err
	}
	var env []string
	for _, e := range c.Env {
		switch {
		case strings.HasPrefix(e.Name, "GO") && e.ValueFrom == nil:
			env = append(env, e.Name+"="+e.Value)
		case e.Name == manager.MemoryLimitEnv:
			ref := e.ValueFrom
			if ref == nil || ref.ResourceFieldRef == nil || ref.ResourceFieldRef.Resource != "limits.memory" {
				return nil, fmt.Errorf("%s of config/manager/manager.yaml is not the downward API's limits.memory", e.Name)
			}
			limit, err := managerMemoryLimit()
			if err != nil {
				return nil, err
			}
			env = append(env, fmt.Sprintf("%s=%d", e.Name, limit))
		}
	}
	return env, nil
}
