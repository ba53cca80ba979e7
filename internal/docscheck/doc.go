// Package docscheck holds the tests that keep the project's documentation true to the tree:
// every file and package a page names must exist.
package docscheck
