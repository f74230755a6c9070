package ope

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"testing"
)

// fuzzJourneys decodes arbitrary bytes into journeys over 3 actions and
// states of width 2: per journey a length byte (1–4 steps), per step an
// action byte and three 8-byte floats (log-prob, reward, one state value).
// Gaps, bad done flags and every float are possible.
func fuzzJourneys(b []byte) []Journey {
	var out []Journey
	f64 := func() float64 {
		if len(b) < 8 {
			b = nil
			return 0
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(b))
		b = b[8:]
		return v
	}
	for len(b) > 0 && len(out) < 64 {
		h := int(b[0]%4) + 1
		flags := b[0] >> 2
		b = b[1:]
		j := Journey{ID: string(rune('a' + len(out)%26)), Tag: []string{"", "X", "Y"}[flags%3], Truth: []string{"", "P"}[flags/3%2]}
		for k := range h {
			if len(b) == 0 {
				break
			}
			act := int(b[0] % 4) // 3 is out of range
			b = b[1:]
			s := Step{T: k, Action: act, LogProb: f64(), Reward: f64(), State: []float32{float32(f64()), 1}, Done: k == h-1}
			if flags&32 != 0 && k == 0 {
				s.T = 1 // a gap
			}
			j.Steps = append(j.Steps, s)
		}
		out = append(out, j)
	}
	return out
}

// FuzzEvaluate feeds arbitrary journeys and settings to Evaluate.
// Invariant: it never panics, and either returns an error or a report
// whose every figure is finite (it encodes as JSON, which rejects NaN and
// infinities) with lo ≤ hi in every interval.
func FuzzEvaluate(f *testing.F) {
	step := func(act byte, lp, r, s float64) []byte {
		out := []byte{act}
		for _, v := range []float64{lp, r, s} {
			out = binary.LittleEndian.AppendUint64(out, math.Float64bits(v))
		}
		return out
	}
	seed := append([]byte{1}, step(0, math.Log(1.0/3), 1, 0.5)...)
	seed = append(seed, step(2, math.Log(1.0/3), -2, 0.1)...)
	f.Add(seed, uint8(0), 0.0, 1.0)
	f.Add(append([]byte{0}, step(1, math.Inf(-1), 1e308, 1)...), uint8(1), 0.0, 0.5)
	f.Add(append([]byte{3}, step(1, -1e-300, math.NaN(), 1)...), uint8(2), 10.0, 1.0)
	f.Add(append(append([]byte{1}, step(0, -5, 1e200, 1)...), step(0, -5, 1e200, 1)...), uint8(1), 0.0, 1.0)
	f.Fuzz(func(t *testing.T, data []byte, which uint8, clip, gamma float64) {
		js := fuzzJourneys(data)
		tg := []Target{{Policy: uniform{3}}, {Policy: constant{a: 1, n: 3}}, {Policy: uniform{3}, Value: func(o []float64) float64 { return o[0] * 1e300 }}}[which%3]
		model := []string{ModelFQE, ModelNone, ModelLinear}[which/3%3]
		rep, err := Evaluate(tg, js, Config{Clip: clip, Gamma: gamma, Model: model, Resamples: 20})
		if err != nil {
			return
		}
		if _, err := json.Marshal(rep); err != nil {
			t.Fatalf("report does not encode: %v\n%+v", err, rep)
		}
		if err := rep.checkFinite(); err != nil {
			t.Fatal(err)
		}
		for _, s := range rep.Segments {
			for _, e := range append([]Estimate{{Interval: s.Logged}}, s.Estimates...) {
				if e.Lo > e.Hi {
					t.Fatalf("%s %s: lo %v > hi %v", s.Name, e.Estimator, e.Lo, e.Hi)
				}
			}
		}
	})
}
