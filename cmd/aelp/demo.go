package main

import (
	"context"
	"os"

	"github.com/aelp/aelp/learner/replay"
)

// demoOptions are aelp demo's options besides the demo's configuration.
type demoOptions struct {
	// Table prints the table of expected crisis shares instead.
	Table bool
}

func demoSetup() (*flagSet, action) {
	fs := newFlagSet("demo")
	d := newConfig(fs, replay.DefaultDemoConfig)
	opt := newConfig(fs, func() demoOptions { return demoOptions{} })
	fs.Float64Var(&d.Weight, "weight", d.Weight, "crisis_parent_weight")
	fs.Float64Var(&d.Alpha, "alpha", d.Alpha, "importance_sampling_alpha")
	fs.Float64Var(&d.Beta, "beta", d.Beta, "importance_sampling_beta (IS exponent)")
	fs.Float64Var(&d.Temperature, "temperature", d.Temperature, "temperature T")
	fs.IntVar(&d.BatchSize, "batch-size", d.BatchSize, "batch size")
	fs.IntVar(&d.Batches, "batches", d.Batches, "batches to average over")
	fs.IntVar(&d.Population, "population", d.Population, "experiences in the buffer")
	fs.Float64Var(&d.CrisisFraction, "crisis-fraction", d.CrisisFraction, "share of crisis parents in the buffer")
	fs.Uint64Var(&d.Seed, "seed", d.Seed, "random seed")
	fs.BoolVar(&opt.Table, "table", opt.Table, "print the table of expected crisis shares instead")
	return fs, func(context.Context) error {
		if opt.Table {
			return replay.ShareTable(os.Stdout)
		}
		if err := d.Validate(); err != nil {
			return usagef("%v", err)
		}
		return replay.RunDemo(os.Stdout, *d)
	}
}
