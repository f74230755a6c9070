package join

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aelp/aelp/schemas"
)

// Windows are the attribution windows: an outcome of kind k counts for a
// decision made at t when its event time is at most t + For(k). A decision
// waits for the longest of them, Max, before its experience is emitted.
type Windows struct {
	// Default is the window of every kind not in ByKind. Default 10m.
	Default time.Duration
	// ByKind are windows of particular kinds, keyed by upper-case kind.
	ByKind map[string]time.Duration
}

// DefaultWindow is the window of a kind that is not given one (10 min, the
// experimental-unit duration of learning-loop).
const DefaultWindow = 10 * time.Minute

// ParseWindows parses a window specification: a duration ("10m"), kind=
// duration pairs ("conversion=24h,click=30m"), or both ("10m,conversion=
// 24h"); kinds are case-insensitive; a kind given twice, an empty kind, a
// duration that does not parse and one that is not positive are errors.
// The empty string is the default, 10m for every kind.
func ParseWindows(s string) (Windows, error) {
	w := Windows{Default: DefaultWindow}
	if strings.TrimSpace(s) == "" {
		return w, nil
	}
	bare := false
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		kind, dur, isPair := strings.Cut(part, "=")
		if !isPair {
			kind, dur = "", part
		}
		kind = strings.ToUpper(strings.TrimSpace(kind))
		d, err := time.ParseDuration(strings.TrimSpace(dur))
		switch {
		case isPair && kind == "":
			return Windows{}, fmt.Errorf("window %q: empty kind before =", part)
		case err != nil:
			return Windows{}, fmt.Errorf("window %q: %q is not a duration such as 10m or 24h", part, strings.TrimSpace(dur))
		case d <= 0:
			return Windows{}, fmt.Errorf("window %q: must be positive", part)
		case !isPair && bare:
			return Windows{}, fmt.Errorf("window %q: a second default window", part)
		case !isPair:
			bare, w.Default = true, d
		case w.ByKind[kind] != 0:
			return Windows{}, fmt.Errorf("window %q: kind %s given twice", part, kind)
		default:
			if w.ByKind == nil {
				w.ByKind = make(map[string]time.Duration)
			}
			w.ByKind[kind] = d
		}
	}
	return w, nil
}

// String returns the specification ParseWindows reads back: the default,
// then the kinds in order.
func (w Windows) String() string {
	parts := []string{cmp.Or(w.Default, DefaultWindow).String()}
	for _, k := range slices.Sorted(maps.Keys(w.ByKind)) {
		parts = append(parts, strings.ToLower(k)+"="+w.ByKind[k].String())
	}
	return strings.Join(parts, ",")
}

// For returns the window of outcome kind kind.
func (w Windows) For(kind string) time.Duration {
	if d, ok := w.ByKind[kind]; ok {
		return d
	}
	if d, ok := w.ByKind[strings.ToUpper(kind)]; ok {
		return d
	}
	return cmp.Or(w.Default, DefaultWindow)
}

// Max returns the longest window: how long every decision waits.
func (w Windows) Max() time.Duration {
	m := cmp.Or(w.Default, DefaultWindow)
	for _, d := range w.ByKind {
		m = max(m, d)
	}
	return m
}

// Config configures a Core. The zero value of a duration or count takes
// the default given with its field.
type Config struct {
	// Windows are the attribution windows (see Windows). Default 10m for
	// every kind.
	Windows Windows
	// Grace is how far behind the highest event time seen the watermark
	// stays, for records that arrive out of order. Default 5s.
	Grace time.Duration
	// IdleAdvance is the wall time after which an input of a partition that
	// has delivered nothing stops holding the watermark back; when both
	// inputs are idle the watermark moves to wall-clock now − Grace (or the
	// highest event time seen − Grace, if later). Default 30s.
	IdleAdvance time.Duration
	// BackwardWindow is how long (in event time) an outcome whose decision
	// has not arrived is held for it. Default 2m.
	BackwardWindow time.Duration
	// DefaultReward is the reward of a decision no outcome is attributed
	// to. Default 0.
	DefaultReward float64
	// MaxPending bounds the open decisions of all partitions; at the bound
	// Full reports true and the caller stops reading decisions (back
	// pressure) while outcomes keep the event clock moving. Default
	// 200,000.
	MaxPending int
	// MaxSteps, when positive, makes a decision at step MaxSteps−1 or later
	// the last of its episode (done). Default 0: unknown.
	MaxSteps int
	// Limits are the environment's dimensions that decisions are validated
	// against (state width, number of actions).
	Limits schemas.Limits
}

// Defaults of Config.
const (
	DefaultGrace          = 5 * time.Second
	DefaultIdleAdvance    = 30 * time.Second
	DefaultBackwardWindow = 2 * time.Minute
	DefaultMaxPending     = 200_000
)

// WithDefaults returns c with every zero field that has a default set to it.
func (c Config) WithDefaults() Config {
	c.Windows.Default = cmp.Or(c.Windows.Default, DefaultWindow)
	c.Grace = cmp.Or(c.Grace, DefaultGrace)
	c.IdleAdvance = cmp.Or(c.IdleAdvance, DefaultIdleAdvance)
	c.BackwardWindow = cmp.Or(c.BackwardWindow, DefaultBackwardWindow)
	c.MaxPending = cmp.Or(c.MaxPending, DefaultMaxPending)
	return c
}

// Validate reports the first invalid field, after defaults.
func (c Config) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.Windows.Default < 0:
		return fmt.Errorf("window %s: must be positive", c.Windows.Default)
	case c.Grace < 0:
		return fmt.Errorf("grace %s: must not be negative", c.Grace)
	case c.IdleAdvance < 0:
		return fmt.Errorf("idle advance %s: must be positive", c.IdleAdvance)
	case c.BackwardWindow < 0:
		return fmt.Errorf("backward window %s: must be positive", c.BackwardWindow)
	case c.MaxPending < 0:
		return fmt.Errorf("max pending %d: must be positive", c.MaxPending)
	case c.MaxSteps < 0:
		return fmt.Errorf("max steps %d: must be 0 (unknown) or positive", c.MaxSteps)
	case !finite(c.DefaultReward):
		return fmt.Errorf("default reward %v: must be finite", c.DefaultReward)
	}
	for k, d := range c.Windows.ByKind {
		if d <= 0 || k == "" {
			return fmt.Errorf("window %s=%s: kind must be named and the window positive", k, d)
		}
	}
	return nil
}
