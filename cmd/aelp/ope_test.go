package main

import (
	"bytes"
	"encoding/json"
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
// undecodable record and one journey whose second step is missing.
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
// mean; the journey with a missing step and the undecodable record are
// left out and counted.
func TestEvaluateOPEFile(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "logged.avro"), filepath.Join(dir, "out.json")
	const n = 400
	writeLoggedFile(t, in, n)
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = f
	var so, se bytes.Buffer
	code := realMain([]string{"evaluate", "--ope", "--policy", "logging", "--file", in, "--format", "json", "--resamples", "200"}, &so, &se)
	os.Stdout = stdout
	f.Close()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, se.String())
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
	if got.Counts.Journeys != n-1 || got.Counts.Gaps != 1 || got.Report.Journeys != n-1 {
		t.Errorf("counts %+v, report of %d journeys: want %d journeys and 1 with a gap", got.Counts, got.Report.Journeys, n-1)
	}
	all, ok := got.Report.Segment(ope.KindAll)
	if !ok {
		t.Fatalf("no segment all: %s", data)
	}
	p, _ := all.Estimate(ope.PDIS)
	if all.ESS != float64(n-1) || p.Value != all.Logged.Value {
		t.Errorf("ESS %v, PDIS %v, logged %v: want ESS %d and PDIS = logged", all.ESS, p.Value, all.Logged.Value, n-1)
	}
}
