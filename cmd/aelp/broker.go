package main

import (
	"context"

	"github.com/aelp/aelp/internal/broker"
)

func runBroker(ctx context.Context, args []string) error {
	fs := newFlagSet("broker")
	var lf logFlags
	lf.register(fs)
	listen := fs.String("listen", broker.DefaultListen, "host:port to listen on")
	dataDir := fs.String("data-dir", "./data/kafka", "directory for topics, records and offsets (empty: memory only)")
	partitions := fs.Int("partitions", 6, "partitions of topics created without a count")
	if err := fs.parse(args); err != nil {
		return err
	}
	log, err := lf.logger("broker")
	if err != nil {
		return err
	}
	cfg := broker.Config{Listen: *listen, DataDir: *dataDir, DefaultPartitions: *partitions, Logger: log}
	if err := cfg.Validate(); err != nil {
		return usagef("%v", err)
	}
	b, err := broker.Start(cfg)
	if err != nil {
		return err
	}
	log.Info().Strs("addrs", b.Addrs()).Str("data_dir", *dataDir).Msg("embedded broker listening")
	<-ctx.Done()
	log.Info().Msg("stopping embedded broker")
	b.Close()
	log.Info().Msg("embedded broker stopped")
	return nil
}
