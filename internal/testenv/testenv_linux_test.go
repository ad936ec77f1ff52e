package testenv

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// TestNoServerOutlivesItsTestBinary kills a test binary that started its own Redis
// with SIGKILL (no cleanup runs) and checks that its redis-server dies too.
func TestNoServerOutlivesItsTestBinary(t *testing.T) {
	cmd := child(t, "hold", os.Getenv("PATH"))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "REDIS ") {
		_ = cmd.Process.Kill()
		t.Fatalf("child said %q (%v)", line, err)
	}
	url := strings.TrimSpace(strings.TrimPrefix(line, "REDIS "))
	if !answers(url) {
		t.Fatalf("the child's Redis at %s does not answer", url)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	WaitFor(t, "the killed binary's redis-server to stop answering", func() bool { return !answers(url) })
}
