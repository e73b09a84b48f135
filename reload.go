package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"tailguard/config"
)

// errNoFile refuses a reload of a config that was not read from a file.
var errNoFile = errors.New("no config file to reload (the config was given on the command line)")

// errStopped refuses a reload once the process has begun to stop.
var errStopped = errors.New("tailguard is stopping")

// Reload reads the config again and applies it; it is what every trigger
// (SIGHUP, a change of the file, POST /reload, named by trigger in the
// log) calls. A config that does not load, validate or apply is refused
// with its errors logged and counted (tailguard_config_reload_failures_total),
// and the running one keeps serving.
func (p *Process) Reload(trigger string) error {
	if p.src.file == "" {
		return errNoFile
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errStopped
	}
	cfg, err := p.src.load()
	if err == nil {
		err = p.srv.Reload(cfg)
	}
	p.reloads.Count(err)
	if err != nil {
		p.log.Error("config reload refused; the running config keeps serving", zap.String("trigger", trigger), zap.Error(err))
		return err
	}
	p.log.Info("config reloaded", zap.String("trigger", trigger), zap.Strings("routes", routeNames(cfg)))
	return nil
}

// watch starts the reload triggers that run on their own, until ctx ends:
// SIGHUP and, for a config file, a change of the file. Both are in place
// when it returns. SIGHUP is taken even without a file, so that it never
// kills the process.
func (p *Process) watch(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	p.wg.Go(func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = p.Reload("SIGHUP")
				p.reloadCertificate("SIGHUP")
			}
		}
	})
	if p.src.file != "" {
		p.watchFile(ctx)
	}
	if cert, key := p.srv.TLSFiles(); cert != "" {
		p.watchCertificate(ctx, cert)
		p.watchCertificate(ctx, key)
	}
}

// watchCertificate reloads the listener's certificate when file (its
// certificate or its key) changes. The directory is watched, so a
// Kubernetes Secret's symlink swap, or cert-manager's rename, is seen.
func (p *Process) watchCertificate(ctx context.Context, file string) {
	w, err := config.NewWatch(file)
	if err != nil {
		p.log.Error("tls certificate watch stopped; reload it with SIGHUP", zap.Error(err))
		return
	}
	p.wg.Go(func() {
		if err := w.Run(ctx, 250*time.Millisecond, func() { p.reloadCertificate("file change") }); err != nil {
			p.log.Error("tls certificate watch stopped; reload it with SIGHUP", zap.Error(err))
		}
	})
}

// reloadCertificate reads the listener's certificate and key again. A pair
// that does not load, match or is not valid now is refused, logged and
// counted (tailguard_tls_certificate_reload_failures_total), and the old
// one keeps serving; connections open keep theirs either way.
func (p *Process) reloadCertificate(trigger string) {
	if cert, _ := p.srv.TLSFiles(); cert == "" {
		return
	}
	err := p.srv.ReloadCertificate()
	for try := 0; err != nil && trigger == "file change" && try < certSettleTries; try++ {
		// A rotation that renames the certificate and the key one after
		// the other is read between the two: give it time to finish
		// before calling the pair bad.
		time.Sleep(certSettle)
		err = p.srv.ReloadCertificate()
	}
	p.certReloads.Count(err)
	if err != nil {
		p.log.Error("tls certificate reload refused; the old certificate keeps serving", zap.String("trigger", trigger), zap.Error(err))
		return
	}
	leaf := p.srv.Certificate()
	p.log.Info("tls certificate reloaded", zap.String("trigger", trigger),
		zap.String("serial", leaf.SerialNumber.String()), zap.Time("not_after", leaf.NotAfter))
}

// A certificate pair refused after a file change is read again
// certSettleTries times, certSettle apart, before it is counted as bad.
const (
	certSettle      = 250 * time.Millisecond
	certSettleTries = 4
)

// watchFile reloads when the config file changes. Without the watch,
// SIGHUP and POST /reload still work, and the log says so.
func (p *Process) watchFile(ctx context.Context) {
	w, err := config.NewWatch(p.src.file)
	if err != nil {
		p.watchStopped(err)
		return
	}
	p.wg.Go(func() {
		if err := w.Run(ctx, 250*time.Millisecond, func() { _ = p.Reload("file change") }); err != nil {
			p.watchStopped(err)
		}
	})
}

func (p *Process) watchStopped(err error) {
	p.log.Error("config file watch stopped; reload with SIGHUP or POST /reload", zap.Error(err))
}
