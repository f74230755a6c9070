package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/internal/kafkax"
	"github.com/aelp/aelp/learner/ope"
	"github.com/aelp/aelp/producers"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
)

func TestOPEUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"experiment", "ope", "--seeds", "0"},
		{"experiment", "ope", "--snapshots", "5,2"},
		{"experiment", "ope", "--snapshots", "x"},
		{"experiment", "ope", "--clip", "-1"},
		{"experiment", "ope", "--epsilon", "2"},
		{"experiment", "ope", "--ope-model", "tabular"},
		{"experiment", "ope", "--ope-model-max-weight", "0"},
		{"evaluate", "--ope", "--ope-model-max-weight", "-5"},
		{"evaluate", "--ope", "--ope-model-max-weight", "nan"},
		{"evaluate", "--ope", "--format", "xml"},
		{"evaluate", "--ope", "--policy", "oracle"},
		{"evaluate", "--ope", "--max-journeys", "0"},
		{"evaluate", "--ope", "--confidence", "1.5"},
	} {
		var stdout, stderr bytes.Buffer
		if code := realMain(args, &stdout, &stderr); code != 2 {
			t.Errorf("aelp %s: exit %d, want 2 (stderr %q)", strings.Join(args, " "), code, stderr.String())
		}
		if n := strings.Count(stderr.String(), "\n"); n != 1 {
			t.Errorf("aelp %s: stderr has %d lines, want 1: %q", strings.Join(args, " "), n, stderr.String())
		}
	}
}

// writeLoggedFile records n simulated journeys logged under the uniform
// policy as tagged experiences in an aelp record file, with one
// undecodable record, one journey whose second step is missing, one whose
// third step has no behaviour log-prob (NaN) and one whose first step has
// log-prob −Inf.
func writeLoggedFile(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rw, err := schemas.NewRecordingWriter(f, schemas.RecordingOptions{SourceTopic: kafkax.TopicTagged, SourcePartitions: 1})
	if err != nil {
		t.Fatal(err)
	}
	cfg := sim.DefaultConfig()
	s, err := sim.New(cfg, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	var te schemas.TaggedExperience
	var off int64
	write := func(value []byte) {
		if err := rw.Write(&schemas.RecordedMessage{Topic: kafkax.TopicTagged, Offset: off, Time: time.UnixMilli(off), Value: value}); err != nil {
			t.Fatal(err)
		}
		off++
	}
	write([]byte("not avro"))
	for i := range n {
		s.RunEpisode(sim.Uniform{N: cfg.NumActions()}, func(tr *sim.Transition) {
			producers.FillExperience(&te.Experience, tr, "", -1, time.UnixMilli(off))
			te.EventType = schemas.EventRegular
			switch {
			case i == 1 && tr.Step == 2:
				te.BehaviorLogProb = math.NaN()
			case i == 2 && tr.Step == 0:
				te.BehaviorLogProb = math.Inf(-1)
			}
			b, err := schemas.MarshalTaggedExperience(nil, &te)
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 && tr.Step == 1 {
				return // the journey's step 1 is missing: a gap
			}
			write(b)
		})
	}
	if err := rw.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestEvaluateOPEFile: aelp evaluate --ope --policy logging on a recorded
// file of uniformly logged journeys estimates the uniform policy: every
// weight is 1, so the ESS is the number of journeys and PDIS is the logged
// mean; the journey with a missing step, the records without a behaviour
// log-prob or with log-prob −Inf (and their journeys) and the undecodable
// record are left out, counted, and said so on stderr.
func TestEvaluateOPEFile(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "logged.avro"), filepath.Join(dir, "out.json")
	const n = 400
	writeLoggedFile(t, in, n)
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	errPath := filepath.Join(dir, "stderr")
	ef, err := os.Create(errPath)
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = f, ef
	var so, se bytes.Buffer
	code := realMain([]string{"evaluate", "--ope", "--policy", "logging", "--file", in, "--format", "json", "--resamples", "200"}, &so, &se)
	os.Stdout, os.Stderr = stdout, stderr
	f.Close()
	ef.Close()
	msg, err := os.ReadFile(errPath)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, se.String(), msg)
	}
	for _, want := range []string{"1 without a behaviour log-prob", "1 with log-prob −Inf", "1 undecodable"} {
		if !strings.Contains(string(msg), want) {
			t.Errorf("stderr does not say %q: %s", want, msg)
		}
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Counts ope.Counts `json:"counts"`
		Report ope.Report `json:"report"`
	}
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatalf("%v:\n%s", err, data)
	}
	if c := got.Counts; c.Journeys != n-3 || c.Gaps != 3 || c.MissingLogProb != 1 || c.ImpossibleLogProb != 1 || got.Report.Journeys != n-3 {
		t.Errorf("counts %+v, report of %d journeys: want %d journeys, 3 with a missing or skipped step (1 record without a log-prob, 1 with −Inf)",
			got.Counts, got.Report.Journeys, n-3)
	}
	all, ok := got.Report.Segment(ope.KindAll)
	if !ok {
		t.Fatalf("no segment all: %s", data)
	}
	p, _ := all.Estimate(ope.PDIS)
	if all.ESS != float64(n-3) || p.Value != all.Logged.Value {
		t.Errorf("ESS %v, PDIS %v, logged %v: want ESS %d and PDIS = logged", all.ESS, p.Value, all.Logged.Value, n-3)
	}
}
