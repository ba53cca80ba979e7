package crashguard_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/centaur-dev/workflow-operator/crashguard"
)

// envChildDir makes the test binary a process that enters runs and dies while they execute.
const envChildDir = "CRASHGUARD_TEST_DIE_IN"

func TestMain(m *testing.M) {
	if dir := os.Getenv(envChildDir); dir != "" {
		g, _, err := crashguard.Open(dir)
		if err != nil {
			os.Exit(2)
		}
		if _, _, err := g.Enter(context.Background(), crashguard.Run{Namespace: "team", Name: "hog", UID: "u-hog"}, true); err != nil {
			os.Exit(2)
		}
		os.Exit(137) // dies with the run's record in place
	}
	os.Exit(m.Run())
}

// dieWhileExecuting runs a process that enters a run and dies in its execution.
func dieWhileExecuting(t *testing.T, dir string) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envChildDir+"="+dir)
	if err := cmd.Run(); err == nil {
		t.Fatal("the child process exited cleanly; it should have died")
	}
}

func TestAProcessThatDiesLeavesItsExecutingRunsToTheNext(t *testing.T) {
	dir := t.TempDir()
	g, suspects, err := crashguard.Open(dir)
	if err != nil || len(suspects) != 0 {
		t.Fatalf("a fresh directory: %v %+v", err, suspects)
	}
	leave, alone, err := g.Enter(context.Background(), crashguard.Run{Namespace: "team", Name: "fine", UID: "u-fine"}, false)
	if err != nil || alone {
		t.Fatalf("enter: %v alone=%v", err, alone)
	}
	leave()

	dieWhileExecuting(t, dir)
	next, suspects, err := crashguard.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(suspects) != 1 || suspects[0].UID != "u-hog" || !suspects[0].Alone || suspects[0].Strikes() != crashguard.Conviction {
		t.Fatalf("suspects = %+v; want only the run that executed alone when the process died, convicted", suspects)
	}
	other, meanwhile, _ := crashguard.Open(dir)
	if len(meanwhile) != 0 {
		t.Fatalf("another process found the suspects that a live one is counting: %+v", meanwhile)
	}
	other.Close()
	next.Close() // ends before it forgot the suspect
	after, again, _ := crashguard.Open(dir)
	if len(again) != 1 {
		t.Fatalf("a suspect not yet forgotten is found again by the next process; got %+v", again)
	}
	if err := after.Forget(again[0]); err != nil {
		t.Fatal(err)
	}
	g.Close()
	after.Close()
	last, left, _ := crashguard.Open(dir)
	if len(left) != 0 {
		t.Fatalf("after Forget: %+v", left)
	}
	last.Close()
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
		t.Fatalf("files left behind by processes that ended: %v", files)
	}
}

func TestASuspectExecutesAloneAndTheOthersWaitForIt(t *testing.T) {
	g, _, err := crashguard.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	leaveBystander, _, err := g.Enter(ctx, crashguard.Run{Namespace: "a", Name: "bystander", UID: "1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	type entered struct {
		leave func()
		alone bool
	}
	suspect := make(chan entered, 1)
	go func() {
		leave, alone, _ := g.Enter(ctx, crashguard.Run{Namespace: "a", Name: "suspect", UID: "2"}, true)
		suspect <- entered{leave, alone}
	}()
	time.Sleep(50 * time.Millisecond) // the suspect now waits for the bystander
	late := make(chan func(), 1)
	go func() {
		leave, _, _ := g.Enter(ctx, crashguard.Run{Namespace: "a", Name: "late", UID: "3"}, false)
		late <- leave
	}()
	select {
	case <-suspect:
		t.Fatal("the suspect executed beside the bystander")
	case <-late:
		t.Fatal("a later execution went ahead of the waiting suspect")
	case <-time.After(100 * time.Millisecond):
	}
	leaveBystander()
	s := <-suspect
	if !s.alone {
		t.Fatal("the suspect did not execute alone once the bystander was done")
	}
	select {
	case <-late:
		t.Fatal("an execution started beside the suspect")
	case <-time.After(100 * time.Millisecond):
	}
	s.leave()
	(<-late)()
}

func TestASuspectGivesUpWaitingForALongExecution(t *testing.T) {
	g, _, err := crashguard.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	g.AloneWait = 50 * time.Millisecond
	ctx := context.Background()
	leaveLong, _, _ := g.Enter(ctx, crashguard.Run{Namespace: "a", Name: "long", UID: "1"}, false)
	defer leaveLong()
	leave, alone, err := g.Enter(ctx, crashguard.Run{Namespace: "a", Name: "suspect", UID: "2"}, true)
	if err != nil || alone {
		t.Fatalf("err=%v alone=%v; want the suspect to execute beside the long one after AloneWait", err, alone)
	}
	leave()
	// and nobody is left queued behind it
	leave2, _, err := g.Enter(ctx, crashguard.Run{Namespace: "a", Name: "next", UID: "3"}, false)
	if err != nil {
		t.Fatal(err)
	}
	leave2()
}

func TestProcessesOpeningTheSameDirectoryAtOnceLeaveEachOtherAlone(t *testing.T) {
	dir := t.TempDir()
	guards := make(chan *crashguard.Guard, 20)
	errs := make(chan error, 20)
	for range 20 {
		go func() {
			g, suspects, err := crashguard.Open(dir)
			if err == nil && len(suspects) > 0 {
				err = fmt.Errorf("a live process's records taken for a dead one's: %+v", suspects)
			}
			if err != nil {
				errs <- err
				return
			}
			if _, _, err := g.Enter(context.Background(), crashguard.Run{Namespace: "a", Name: "r", UID: "u"}, false); err != nil {
				errs <- err
				return
			}
			guards <- g
		}()
	}
	for range 20 {
		select {
		case err := <-errs:
			t.Fatal(err)
		case g := <-guards:
			defer g.Close()
		}
	}
}
