package bench

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"
)

// tlsRow is what one target measured: keep-alive requests a second and
// the proxy's CPU per request, full handshakes a second and its CPU per
// handshake, the load generator's busy share in each arm, and what the
// handshake negotiated.
type tlsRow struct {
	name                 string
	rps, cpuReq, busyReq float64
	hps, cpuHS, busyHS   float64
	negotiated           string
}

// tlsColumns are the figures of each tls table.
var tlsColumns = []string{"target", "req/s (keep-alive, 64 conns)", "CPU per request",
	"handshakes/s (new conn each, 64 conns)", "CPU per handshake", "load CPU (keep-alive)", "load CPU (handshakes)"}

// runTLS measures what terminating TLS costs tailguard, side by side with
// nginx on the same ECDSA P-256 certificate, and plain HTTP straight to
// the upstream as the reference. Two closed loops of 64 connections per
// target: keep-alive (connections handshaken before the clock starts),
// for requests a second and the proxy's CPU per request; and a new
// connection per request (Connection: close), each a full handshake since
// the generator never resumes a session, for handshakes a second and CPU
// per handshake. As in overhead the proxy and the upstream share CPU 0
// and the generator has CPU 1 (-pin), the targets take turns for -rounds
// rounds (3) and each figure is the median; -duration is each
// measurement (4s). With -pairs it measures tailguard and nginx in pairs
// instead (runTLSPairs).
func runTLS(ctx context.Context, e *Env) (*Outcome, error) {
	if e.Pairs > 0 {
		return runTLSPairs(ctx, e)
	}
	d := e.span(4*time.Second, 500*time.Millisecond)
	b, pki, pair, err := e.newTLSBed(ctx)
	if err != nil {
		return nil, err
	}
	defer b.close()
	rows, notes, err := takeTurns(b.rounds, tlsTargets(e, pair), medianFigures[tlsRow], func(tg overheadTarget) (tlsRow, error) {
		return e.tlsTarget(ctx, tg, b, pki, d, tlsOffers[tg.name])
	})
	if err != nil {
		return nil, err
	}
	return tlsOutcome(rows, d, append(notes, b.notes...)), nil
}

// newTLSBed is the tls scenario's bed (the upstream) with a PKI in its
// directory and a server certificate and key from it, which every target
// terminates TLS with.
func (e *Env) newTLSBed(ctx context.Context) (*bed, *PKI, tlsPair, error) {
	b, err := e.newBed(ctx, "upstream")
	if err != nil {
		return nil, nil, tlsPair{}, err
	}
	pki, err := NewPKI(b.dir)
	if err == nil {
		var pair tlsPair
		if pair.cert, pair.key, err = pki.IssueServer("server"); err == nil {
			return b, pki, pair, nil
		}
	}
	b.close()
	return nil, nil, tlsPair{}, err
}

// tlsX25519 is the target tailguard measured with a client that offers
// only X25519, the key exchange nginx's OpenSSL 3.0 picks, where Go's
// default client offer makes tailguard's Go server pick the post-quantum
// hybrid X25519MLKEM768: the two rows tell the key exchange's cost from
// the rest.
const tlsX25519 = "tailguard, X25519 offered"

// tlsOffers are the key exchanges the generator offers a target, when not
// Go's default.
var tlsOffers = map[string][]tls.CurveID{tlsX25519: {tls.X25519}}

// tlsTargets are direct (plain HTTP), tailguard (`run -config` with
// -tls-cert and -tls-key; with Go's default client offer, then with
// X25519 alone) and nginx, with pair, on CPU 0.
func tlsTargets(e *Env, pair tlsPair) []overheadTarget {
	tailguard := func(ctx context.Context, dir, upstream string) (string, *process, error) {
		return e.startTailguardProcess(ctx, dir, proxyConfig{endpoints: []string{upstream}}, e.self(),
			"-tls-cert", pair.cert, "-tls-key", pair.key)
	}
	return []overheadTarget{
		{name: "direct (plain HTTP)"},
		{name: "tailguard", start: tailguard},
		{name: tlsX25519, start: tailguard},
		{name: "nginx", start: func(ctx context.Context, dir, upstream string) (string, *process, error) {
			return startPeer(func(listen string) (*process, error) { return e.startNginx(ctx, dir, listen, upstream, "0", &pair) })
		}},
	}
}

// tlsTarget measures one target, with a generator offering curves (nil:
// Go's default): keep-alive, then a handshake a request.
func (e *Env) tlsTarget(ctx context.Context, tg overheadTarget, b *bed, pki *PKI, d time.Duration, curves []tls.CurveID) (tlsRow, error) {
	addr, proc, stop, err := tg.reach(ctx, b.dir, b.upAddr, b.up)
	if err != nil {
		return tlsRow{}, err
	}
	defer stop()
	url, args, negotiated := "http://"+addr+"/", []string(nil), "plain TCP"
	if tg.start != nil {
		url, args = "https://"+addr+"/", []string{"-tls-ca", pki.CAFile}
		if len(curves) > 0 {
			args = append(args, "-tls-curves", curveNames(curves))
		}
		if negotiated, err = probeTLS(addr, pki, curves); err != nil {
			return tlsRow{}, err
		}
	}
	e.logf("tls: %s at %s (%s)", tg.name, url, negotiated)
	ka, err := e.closedLoop(ctx, proc, url, d, args...)
	if err != nil {
		return tlsRow{}, err
	}
	hs, err := e.closedLoop(ctx, proc, url, d, append(args, "-no-keepalive")...)
	return tlsRow{
		name: tg.name, negotiated: negotiated,
		rps: ka.rps, cpuReq: ka.cpuUS, busyReq: 100 * ka.busy,
		hps: hs.rps, cpuHS: hs.cpuUS, busyHS: 100 * hs.busy,
	}, err
}

// probeTLS makes one handshake with addr as the generator makes them (Go's
// client, pki's CA, offering curves) and says what it negotiated.
func probeTLS(addr string, pki *PKI, curves []tls.CurveID) (string, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: pki.Pool(), ServerName: "127.0.0.1", CurvePreferences: curves})
	if err != nil {
		return "", fmt.Errorf("TLS probe: %w", err)
	}
	defer c.Close()
	s := c.ConnectionState()
	return fmt.Sprintf("%s, %s, %s", tls.VersionName(s.Version), tls.CipherSuiteName(s.CipherSuite), s.CurveID), nil
}

// curveNames is curves as -tls-curves takes them.
func curveNames(curves []tls.CurveID) string {
	names := make([]string, len(curves))
	for i, c := range curves {
		names[i] = c.String()
	}
	return strings.Join(names, ",")
}

func (r tlsRow) rowName() string { return r.name }

// figures are in tlsColumns' order.
func (r tlsRow) figures() []float64 {
	return []float64{r.rps, r.cpuReq, r.hps, r.cpuHS, r.busyReq, r.busyHS}
}

func (r *tlsRow) setFigures(f []float64) {
	r.rps, r.cpuReq, r.hps, r.cpuHS, r.busyReq, r.busyHS = f[0], f[1], f[2], f[3], f[4], f[5]
}

// tlsGoal is the issue's goal: keep-alive requests a second over TLS at
// least this share of nginx's.
const tlsGoal = 0.8

// tlsOutcome tabulates the targets, then each figure as a ratio to nginx
// and to direct.
func tlsOutcome(rows []tlsRow, d time.Duration, notes []string) *Outcome {
	t := &Table{
		Title:   fmt.Sprintf("TLS termination: closed loops of %v, keep-alive and a new connection (full handshake) per request", d),
		Columns: tlsColumns,
		Notes:   notes,
	}
	for _, r := range rows {
		t.add(r.name, numCell(r.rps, unitPerSec), numCell(r.cpuReq, unitMicros), numCell(r.hps, unitPerSec),
			numCell(r.cpuHS, unitMicros), numCell(r.busyReq, unitPercent), numCell(r.busyHS, unitPercent))
	}
	for _, r := range rows {
		t.note("%s: %s", r.name, r.negotiated)
	}
	t.note("same ECDSA P-256 certificate (a throwaway CA's, bench.NewPKI) for tailguard and nginx; the generator is Go's TLS client, default settings but for the row offering X25519 alone, verifying the chain, without a session cache: no handshake is a resumption")
	t.note("nginx: ssl, TLSv1.2 TLSv1.3, HTTP/1.1 only, ssl_session_tickets off, ssl_session_cache off, one worker without master; tailguard: `run -config` with -tls-cert/-tls-key (session tickets on, unused by this client); both keep-alive plain HTTP to the upstream")
	t.note("CPU per request and per handshake is the process's user + system time over the closed loop's requests: the upstream's for direct, the proxy's alone otherwise; a handshake's figure includes its one proxied request")
	t.note("load CPU is the generator's user + system time over the run, one CPU = 100%%: near 100%% the generator, not the target, may have set the pace")
	out := &Outcome{Tables: []*Table{t}}
	if n, ok := findNamed(rows, "nginx"); ok {
		out.Tables = append(out.Tables, tlsRatioTable(rows, n))
		if tg, ok := findNamed(rows, "tailguard"); ok && n.rps > 0 {
			verdict := "met"
			if tg.rps < tlsGoal*n.rps {
				verdict = "NOT met"
			}
			same := ""
			if x, ok := findNamed(rows, tlsX25519); ok {
				same = fmt.Sprintf(" (%s, whose keep-alive path is the same once handshaken: %.2f×, a measure of the noise)", tlsX25519, x.rps/n.rps)
			}
			t.note("goal (issue): tailguard's keep-alive req/s ≥ %.1f× nginx's: %.2f× measured, %s%s", tlsGoal, tg.rps/n.rps, verdict, same)
		}
	}
	if dr, ok := findNamed(rows, "direct (plain HTTP)"); ok {
		out.Tables = append(out.Tables, tlsRatioTable(rows, dr))
	}
	return out
}

// tlsRatioTable divides every target's figures by base's.
func tlsRatioTable(rows []tlsRow, base tlsRow) *Table {
	return ratioRows(&Table{Title: "TLS as a ratio to " + base.name, Columns: tlsColumns}, rows, base)
}
