package faulttest

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/consumers"
	"github.com/aelp/aelp/internal/kafkatest"
	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/learner"
	"github.com/aelp/aelp/producers"
	"github.com/rs/zerolog"
)

// failFast bounds how long a role may take to give up on a refused
// credential. A refusal takes one round trip; running into this deadline
// means the role retried instead.
const failFast = 30 * time.Second

// maxAuthWarnings is how many warning or error lines a role may log for a
// refused credential: a handful, not a retry storm.
const maxAuthWarnings = 3

// checkNoSecret fails the test when text contains one of the secrets.
func checkNoSecret(t *testing.T, what, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("%s contains a password", what)
		}
	}
}

// TestSASLRoles runs every role against a SASL_SSL listener with
// SCRAM-SHA-512 (a test CA, the password in AELP_SASL_PASSWORD): simulate,
// aggregate and learn as `aelp` processes carry records end to end. Then,
// with a wrong password, each role (in-process and as a process) fails
// fast with an error matching kafkax.ErrAuth, logs only a handful of
// warnings, and no password shows in any log line or error.
func TestSASLRoles(t *testing.T) {
	aelpBinary(t)
	c := kafkatest.Start(t, kafkatest.Options{SASL: true})
	cfg := c.Config()
	wrong := c.WrongPassword()
	secrets := []string{cfg.SASL.Password, wrong.SASL.Password}
	const experiment, group = "faultsasl", "fault-sasl-agg"

	t.Run("RightPassword", func(t *testing.T) {
		env := kafkaEnv(cfg)
		common := append(kafkaArgs(cfg), "--log-format", "json")
		sim := startAelp(t, "simulate", env, append(append([]string{"simulate"}, common...),
			"--experiment", experiment, "--users", "300", "--seed", "3")...)
		if err := sim.Wait(t, 2*time.Minute); err != nil {
			t.Fatalf("aelp simulate: %v", err)
		}
		var produced int64
		if _, err := fmt.Sscanf(sim.Stdout.String(), "published %d experiences", &produced); err != nil || produced == 0 {
			t.Fatalf("aelp simulate printed %q, want \"published N experiences ...\" with N > 0", sim.Stdout.String())
		}

		agg := startAelp(t, "aggregate", env, append(append([]string{"aggregate"}, common...), "--group", group)...)
		waitFor(t, 2*time.Minute, func() string {
			return fmt.Sprintf("group lag %d (aggregator running: %v)", kafkatest.GroupLag(cfg, group, kafkax.TopicRaw), agg.Running())
		}, func() bool { return !agg.Running() || kafkatest.GroupLag(cfg, group, kafkax.TopicRaw) == 0 })
		if err := agg.Stop(t, time.Minute); err != nil {
			t.Fatalf("aelp aggregate: %v", err)
		}

		ckpt := filepath.Join(t.TempDir(), "sasl.ckpt")
		lrn := startAelp(t, "learn", env, append(append([]string{"learn"}, common...),
			"--experiment", experiment, "--bounded", "--fresh", "--checkpoint", ckpt,
			"--min-buffer", "100", "--batch-size", "64", "--metrics-every", "5")...)
		if err := lrn.Wait(t, 2*time.Minute); err != nil {
			t.Fatalf("aelp learn: %v", err)
		}
		if got := learnedFrom(t, lrn.Stdout.String()); got != produced {
			t.Errorf("aelp learn learned from %d experiences, want the %d simulated", got, produced)
		}
		ck, err := learner.ReadCheckpoint(ckpt)
		if err != nil {
			t.Fatal(err)
		}
		if u := checkpointUpdates(t, ck); u == 0 {
			t.Error("the learner's checkpoint has no updates")
		}
		if ms := readMetrics(t, cfg, experiment); len(ms) == 0 {
			t.Error("the learner published no metrics")
		}

		raw := experienceIDs(t, cfg, kafkax.TopicRaw, false)
		out := experienceIDs(t, cfg, kafkax.TopicTagged, true)
		acc := account(t, produced, append(append([]string{}, raw...), out...), out)
		t.Logf("SASL_SSL end to end: %v", acc)
		if acc.Lost != 0 {
			t.Errorf("%d ids lost (e.g. %v)", acc.Lost, acc.Missing)
		}
		for _, p := range []*proc{sim, agg, lrn} {
			checkNoSecret(t, "aelp "+p.Name+" output", p.Stdout.String()+p.Stderr.String(), secrets)
			if n := countLevel(p.Stderr.String(), "error"); n != 0 {
				t.Errorf("aelp %s logged %d errors:\n%s", p.Name, n, lastLines(p.Stderr.String(), 10))
			}
		}
	})

	t.Run("WrongPasswordInProcess", func(t *testing.T) {
		roles := []struct {
			name string
			run  func(ctx context.Context, log zerolog.Logger) error
		}{
			{"simulate", func(ctx context.Context, log zerolog.Logger) error {
				s, err := producers.NewSimulator(producers.SimulateConfig{Kafka: wrong, ExperimentID: experiment,
					Users: 10, Seed: 1, Log: log})
				if err != nil {
					return err
				}
				_, err = s.Run(ctx)
				return err
			}},
			{"aggregate", func(ctx context.Context, log zerolog.Logger) error {
				a, err := consumers.NewAggregator(consumers.AggregateConfig{Kafka: wrong, Group: group + "-wrong",
					Limits: limits, Log: log})
				if err != nil {
					return err
				}
				return a.Run(ctx)
			}},
			{"learn", func(ctx context.Context, log zerolog.Logger) error {
				l, err := learner.New(learner.Config{Kafka: wrong, ExperimentID: experiment, Fresh: true, Log: log})
				if err != nil {
					return err
				}
				return l.Run(ctx)
			}},
		}
		for _, role := range roles {
			t.Run(role.name, func(t *testing.T) {
				var logs syncBuffer
				ctx, cancel := context.WithTimeout(context.Background(), failFast)
				defer cancel()
				err := role.run(ctx, zerolog.New(&logs).Level(zerolog.DebugLevel))
				if err == nil {
					t.Fatalf("%s with the wrong password returned no error (deadline reached: %v)", role.name, ctx.Err() != nil)
				}
				if !errors.Is(err, kafkax.ErrAuth) {
					t.Errorf("error = %v, want one matching kafkax.ErrAuth", err)
				}
				if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("ran into the %s deadline instead of failing fast: %v", failFast, err)
				}
				if !strings.Contains(err.Error(), "authentication failed") {
					t.Errorf("error %q does not say that authentication failed", err)
				}
				out := logs.String()
				if n := countLevel(out, "warn") + countLevel(out, "error"); n > maxAuthWarnings {
					t.Errorf("%d warning and error lines for a refused credential, want at most %d:\n%s", n, maxAuthWarnings, lastLines(out, 10))
				}
				checkNoSecret(t, "error text", err.Error(), secrets)
				checkNoSecret(t, "log", out, secrets)
			})
		}
	})

	t.Run("WrongPasswordProcess", func(t *testing.T) {
		for _, role := range [][]string{
			{"simulate", "--experiment", experiment, "--users", "10"},
			{"aggregate", "--group", group + "-wrong"},
			{"learn", "--experiment", experiment, "--fresh"},
		} {
			t.Run(role[0], func(t *testing.T) {
				args := append(append(append([]string{role[0]}, kafkaArgs(wrong)...), "--log-format", "json"), role[1:]...)
				p := startAelp(t, role[0], kafkaEnv(wrong), args...)
				err := p.Wait(t, failFast)
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 1 {
					t.Errorf("aelp %s with the wrong password: exit %v, want status 1", role[0], err)
				}
				stderr := p.Stderr.String()
				if !strings.Contains(stderr, "authentication failed") {
					t.Errorf("aelp %s stderr does not say that authentication failed:\n%s", role[0], lastLines(stderr, 10))
				}
				if n := countLevel(stderr, "warn") + countLevel(stderr, "error"); n > maxAuthWarnings {
					t.Errorf("%d warning and error lines for a refused credential, want at most %d:\n%s", n, maxAuthWarnings, lastLines(stderr, 10))
				}
				checkNoSecret(t, "aelp "+role[0]+" output", p.Stdout.String()+stderr, secrets)
			})
		}
	})
}
