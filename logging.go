package main

import (
	"fmt"
	"net"
	"runtime"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"tailguard/config"
)

// newLogger builds the JSON logger. Its sampler keeps a burst of failing
// requests from flooding the log: per message and second, the first 100
// lines, then one in 100.
func newLogger(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	zc.Sampling = &zap.SamplingConfig{Initial: 100, Thereafter: 100}
	return zc.Build()
}

// logStart writes the one start-up line: listeners, routes, and the CPU
// and memory the runtime will use.
func logStart(log *zap.Logger, cfg *config.Config, proxyAddr, adminAddr net.Addr, memLimit int64) {
	log.Info("tailguard started",
		zap.String("version", version()),
		zap.String("config", cfg.File()),
		zap.Stringer("listen", proxyAddr),
		zap.Stringer("admin", adminAddr),
		zap.Strings("routes", routeNames(cfg)),
		zap.Int("gomaxprocs", runtime.GOMAXPROCS(0)),
		zap.Int64("gomemlimit", memLimit),
		zap.Int("upstreams", len(cfg.Upstreams)),
		zap.Bool("tls", cfg.TLS != nil))
	for _, w := range cfg.Warnings() {
		log.Warn("config warning", zap.String("warning", w))
	}
}

func routeNames(cfg *config.Config) []string {
	names := make([]string, 0, len(cfg.Routes))
	for _, r := range cfg.Routes {
		names = append(names, r.Name)
	}
	return names
}
