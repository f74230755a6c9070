package systemtest

import (
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/learner"
	"github.com/aelp/aelp/learner/ppo"
)

// TestLearnRefusesAnotherCheckpoint: `aelp learn` resuming a checkpoint of
// another tagged topic or experiment exits 1 with one line naming the
// saved and the configured value and the flag that would resume it,
// before it connects to a broker.
func TestLearnRefusesAnotherCheckpoint(t *testing.T) {
	agent, err := ppo.New(learner.DefaultPPO(16, 12), rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	state, err := agent.MarshalCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "a.ckpt")
	if err := learner.WriteCheckpoint(path, &learner.Checkpoint{ExperimentID: "exp-a", TaggedTopic: "tagged.a",
		Offsets: map[int]int64{0: 5}, Agent: state}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"other tagged topic", []string{"--experiment=exp-a", "--tagged-topic=tagged.b"},
			[]string{`tagged topic "tagged.a", not "tagged.b"`, "--tagged-topic tagged.a"}},
		{"other experiment", []string{"--experiment=exp-b", "--tagged-topic=tagged.a"},
			[]string{`experiment "exp-a", not "exp-b"`, "--experiment exp-a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// No broker listens on port 1: the check comes first.
			args := append([]string{"learn", "--brokers=127.0.0.1:1", "--checkpoint=" + path}, tc.args...)
			p := start(t, "aelp learn", aelpBinary(t), args...)
			select {
			case <-p.Done():
			case <-time.After(2 * time.Minute):
				t.Fatal("aelp learn still running after 2m")
			}
			if p.Cmd.ProcessState.ExitCode() != 1 {
				t.Errorf("exit status %d, want 1", p.Cmd.ProcessState.ExitCode())
			}
			lines := strings.Split(strings.TrimSpace(p.Stderr.String()), "\n")
			last := lines[len(lines)-1]
			t.Logf("stderr: %s", last)
			if !strings.HasPrefix(last, "aelp learn: ") {
				t.Errorf("last stderr line %q, want the error", last)
			}
			for _, w := range tc.want {
				if !strings.Contains(last, w) {
					t.Errorf("error %q does not say %q", last, w)
				}
			}
		})
	}
}
