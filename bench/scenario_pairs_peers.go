package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// pairStarter starts the arms of overhead's paired mode from overhead's
// targets, each once and in a directory of its own under the bed's, in
// front of its upstream, and keeps them to stop when the run ends.
type pairStarter struct {
	dir, upAddr string
	targets     []overheadTarget
	// arms are the arms started, in order; byName holds them by target
	// name, and nil for a target skipped on this machine.
	arms   []*pairArm
	byName map[string]*pairArm
	// notes say which targets were skipped.
	notes []string
}

// newPairStarter starts arms from targets in front of b's upstream.
func newPairStarter(b *bed, targets []overheadTarget) *pairStarter {
	return &pairStarter{dir: b.dir, upAddr: b.upAddr, targets: targets, byName: map[string]*pairArm{}}
}

// stop stops every arm started.
func (s *pairStarter) stop() {
	for _, a := range s.arms {
		a.proc.stop()
	}
}

// start starts tg's proxy as the arm called name.
func (s *pairStarter) start(ctx context.Context, name string, tg overheadTarget) (*pairArm, error) {
	dir := filepath.Join(s.dir, fmt.Sprint("arm", len(s.arms)))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	addr, proc, err := tg.start(ctx, dir, s.upAddr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	a := &pairArm{name: name, addr: addr, proc: proc}
	s.arms = append(s.arms, a)
	return a, nil
}

// arm is the arm of the target called name, started the first time it
// is asked for; nil, noted once, when the target is skipped on this
// machine (a peer not installed).
func (s *pairStarter) arm(ctx context.Context, name string) (*pairArm, error) {
	if a, ok := s.byName[name]; ok {
		return a, nil
	}
	a, err := s.start(ctx, name, targetNamed(s.targets, name))
	if isSkipped(err) {
		s.notes = append(s.notes, fmt.Sprintf("skipped: %v", err))
		err = nil
	}
	if err != nil {
		return nil, err
	}
	s.byName[name] = a
	return a, nil
}

// comparisons starts the arms and returns the paired mode's comparisons
// in the order their pairs are measured: tailguard ÷ the -baseline binary
// (baseline), then with peers each of peerComparisons whose arms could
// start, and the A/A comparison, tailguard ÷ a second process of it,
// last.
func (s *pairStarter) comparisons(ctx context.Context, baseline, peers bool) ([]*comparison, error) {
	self, err := s.arm(ctx, "tailguard")
	if err != nil {
		return nil, err
	}
	var comps []*comparison
	if baseline {
		base, err := s.arm(ctx, "tailguard baseline")
		if err != nil {
			return nil, err
		}
		comps = append(comps, &comparison{name: "A/B: tailguard ÷ tailguard baseline", a: self, b: base})
	}
	again, err := s.start(ctx, "tailguard (second process)", targetNamed(s.targets, "tailguard"))
	if err != nil {
		return nil, err
	}
	if peers {
		for _, pc := range peerComparisons {
			c, err := s.peerComparison(ctx, pc)
			if err != nil {
				return nil, err
			}
			if c != nil {
				comps = append(comps, c)
			}
		}
	}
	return append(comps, &comparison{name: "A/A: tailguard ÷ tailguard (second process)", a: self, b: again, aa: true}), nil
}

// peerComparison starts pc's arms if they are not running yet and
// returns the comparison; nil when either is skipped on this machine.
func (s *pairStarter) peerComparison(ctx context.Context, pc peerPair) (*comparison, error) {
	a, err := s.arm(ctx, pc.a)
	if err != nil || a == nil {
		return nil, err
	}
	b, err := s.arm(ctx, pc.b)
	if err != nil || b == nil {
		return nil, err
	}
	return pc.of(a, b), nil
}

// peerPair is one of -peers' comparisons: the arm a ÷ the peer b, both
// overhead targets by name, and the goals for the ratio.
type peerPair struct {
	a, b  string
	goals []peerGoal
}

// of is the comparison of the started arms a and b.
func (pc peerPair) of(a, b *pairArm) *comparison {
	return &comparison{name: a.name + " ÷ " + b.name, a: a, b: b, goals: pc.goals}
}

// peerComparisons are -peers' comparisons, in the order their pairs are
// measured: issue "The sidecar tax" sets tailguard against nginx and
// against the bare fasthttp relay it is built on, and asks the same of
// tailguard with every policy configured and none firing as of plain
// tailguard.
var peerComparisons = []peerPair{
	{a: "tailguard", b: "nginx", goals: nginxGoals},
	{a: "tailguard", b: "fasthttp relay", goals: relayGoals},
	{a: "tailguard, policies", b: "nginx", goals: nginxGoals},
}

// peerGoal is one of the targets for a ratio a ÷ peer: the
// figure's name, which of a comparison's summaries holds its ratio and
// interval, and the bound.
type peerGoal struct {
	figure string
	of     func(pairSummary) ratioInterval
	bound  bound
}

// The targets against nginx: CPU per request (closed loop, as
// overhead's rounds measure it) at most 1.3× nginx's, req/s (closed loop)
// at least 0.85× nginx's, and p99 at 2,000 req/s (the open loop, pooled
// over the pairs) at most nginx's. Against the bare fasthttp relay: CPU
// per request at most the relay's.
var (
	nginxGoals = []peerGoal{
		{"CPU per request (closed loop)", func(s pairSummary) ratioInterval { return s.cpu }, bound{limit: 1.3}},
		{"req/s (closed loop)", func(s pairSummary) ratioInterval { return s.rps }, bound{limit: 0.85, atLeast: true}},
		{"pooled p99 (open loop)", func(s pairSummary) ratioInterval { return s.pooledP99 }, bound{limit: 1}},
	}
	relayGoals = []peerGoal{
		{"CPU per request (closed loop)", func(s pairSummary) ratioInterval { return s.cpu }, bound{limit: 1}},
	}
)

// goalNotes are the verdicts on c's goals from its summary s, one a goal,
// each shown only when the whole interval is on the goal's side.
func (c *comparison) goalNotes(s pairSummary) []string {
	notes := make([]string, 0, len(c.goals))
	for _, g := range c.goals {
		notes = append(notes, g.bound.note(fmt.Sprintf("goal (issue): %s, %s", g.figure, c.name), g.of(s)))
	}
	return notes
}

// peersNote is the arms table's note on the peers' arms.
const peersNote = "-peers: nginx and the fasthttp relay are started as overhead's rounds start them (one worker each, on CPU 0), and tailguard, policies with every policy configured and none firing (policiesConfig), but once, kept running for the whole run like the other arms; a goal (issue) is shown only when the ratio's whole interval (95%, or the bootstrap's for pooled p99) is on its side"
