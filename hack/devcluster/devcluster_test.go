package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/centaur-dev/workflow-operator/internal/testcluster"
)

func TestAcquireLockRefusesASecondHolder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	first, err := acquireLock(path)
	if err != nil {
		t.Fatalf("first lock: %v", err)
	}
	_, err = acquireLock(path)
	if !errors.Is(err, errLocked) {
		t.Fatalf("second lock: got %v, want errLocked", err)
	}
	if pid := os.Getpid(); !strings.Contains(err.Error(), "(pid "+strconv.Itoa(pid)+")") {
		t.Errorf("the error should name the holder's pid %d: %v", pid, err)
	}
	first.release()
	again, err := acquireLock(path)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	again.release()
}

func TestEnsureDevAPIKeyWritesOnceAndKeepsTheKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api-key")
	key, err := ensureDevAPIKey(context.Background(), nil, path)
	if err != nil {
		t.Fatalf("first call: %v", err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(key) {
		t.Errorf("key %q is not 32 hex-encoded bytes", key)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o600 {
		t.Errorf("mode %o, want 600", mode)
	}
	again, err := ensureDevAPIKey(context.Background(), nil, path)
	if err != nil {
		t.Fatalf("second call: %v", err)
	}
	if again != key {
		t.Errorf("second call returned %q, want the stored %q", again, key)
	}
}

func TestEnsureDevAPIKeyRejectsAnEmptyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api-key")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ensureDevAPIKey(context.Background(), nil, path); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Fatalf("got %v, want an error saying to delete the file", err)
	}
}

func TestIsAliveKnowsAProcessByItsStartTime(t *testing.T) {
	st, err := testcluster.ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !isAlive(procID{pid: os.Getpid(), start: st.Start}) {
		t.Error("we should be alive")
	}
	if isAlive(procID{pid: os.Getpid(), start: st.Start + 1}) {
		t.Error("a different start time is a different process")
	}
}

func TestRenameKubeconfig(t *testing.T) {
	in := []byte(`apiVersion: v1
kind: Config
clusters:
- name: envtest
  cluster: {server: "https://127.0.0.1:6443"}
users:
- name: envtest
  user: {token: secret}
contexts:
- name: envtest
  context: {cluster: envtest, user: envtest}
current-context: envtest
`)
	out, err := renameKubeconfig(in, "centaur-dev")
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	if strings.Contains(s, "envtest") || !strings.Contains(s, "current-context: centaur-dev") || !strings.Contains(s, "https://127.0.0.1:6443") {
		t.Errorf("unexpected kubeconfig:\n%s", s)
	}
}
