// Package docscheck holds the tests that keep the project's documentation true to the tree:
// every file and package a page names must exist, every metric the code registers is documented
// and graphed by the Grafana dashboard, and nothing else is.
package docscheck
