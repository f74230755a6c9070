package main

import (
	"context"
	"os"

	"github.com/aelp/aelp/learner/replay"
)

func runDemo(_ context.Context, args []string) error {
	fs := newFlagSet("demo")
	d := replay.DefaultDemoConfig()
	weight := fs.Float64("weight", d.Weight, "crisis_parent_weight")
	alpha := fs.Float64("alpha", d.Alpha, "importance_sampling_alpha")
	beta := fs.Float64("beta", d.Beta, "importance_sampling_beta (IS exponent)")
	temp := fs.Float64("temperature", d.Temperature, "temperature T")
	batch := fs.Int("batch-size", d.BatchSize, "batch size")
	batches := fs.Int("batches", d.Batches, "batches to average over")
	pop := fs.Int("population", d.Population, "experiences in the buffer")
	frac := fs.Float64("crisis-fraction", d.CrisisFraction, "share of crisis parents in the buffer")
	seed := fs.Uint64("seed", d.Seed, "random seed")
	table := fs.Bool("table", false, "print the table of expected crisis shares instead")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *table {
		return replay.ShareTable(os.Stdout)
	}
	d.Weight, d.Alpha, d.Beta, d.Temperature = *weight, *alpha, *beta, *temp
	d.BatchSize, d.Batches, d.Population, d.CrisisFraction, d.Seed = *batch, *batches, *pop, *frac, *seed
	if err := d.Validate(); err != nil {
		return usagef("%v", err)
	}
	return replay.RunDemo(os.Stdout, d)
}
