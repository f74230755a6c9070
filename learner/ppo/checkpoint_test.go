package ppo

import (
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func trainedAgent(t testing.TB) (*Agent, *Batch) {
	t.Helper()
	cfg := smallConfig()
	cfg.LRSchedule, cfg.TotalUpdates = ScheduleLinear, 50
	a := testAgent(t, cfg, 30)
	b := randomBatch(cfg, 48, rand.New(rand.NewPCG(30, 30)))
	a.ObserveObs(b.Obs)
	for range 3 {
		a.Update(b)
	}
	return a, b
}

// TestCheckpointRoundTrip restores a checkpoint and checks that the
// restored agent and the original, given equal rand sources and the same
// batch, take bit-identical updates (so params, Adam moments and step,
// normaliser, version and update count all came back).
func TestCheckpointRoundTrip(t *testing.T) {
	a, b := trainedAgent(t)
	data, err := a.MarshalCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Restore(data, rand.New(rand.NewPCG(77, 77)))
	if err != nil {
		t.Fatal(err)
	}
	a.rng = rand.New(rand.NewPCG(77, 77))
	if r.Version() != a.Version() || r.Updates() != a.Updates() || r.adamT != a.adamT || r.norm.count != a.norm.count {
		t.Fatalf("restored counters %d/%d/%d/%v, want %d/%d/%d/%v", r.Version(), r.Updates(), r.adamT, r.norm.count,
			a.Version(), a.Updates(), a.adamT, a.norm.count)
	}
	for range 2 {
		sa, sr := a.Update(b), r.Update(b)
		if sa != sr {
			t.Fatalf("stats differ after restore: %+v vs %+v", sa, sr)
		}
	}
	for i := range a.params {
		if a.params[i] != r.params[i] {
			t.Fatalf("param %d: %v vs %v after identical updates", i, a.params[i], r.params[i])
		}
	}
	if got, want := r.Config().Hidden, a.Config().Hidden; len(got) != len(want) {
		t.Errorf("hidden %v, want %v", got, want)
	}
}

// TestRestoreCorrupt checks that every truncation and a flipped bit in
// every byte give an error wrapping ErrBadCheckpoint, never a panic.
func TestRestoreCorrupt(t *testing.T) {
	a, _ := trainedAgent(t)
	data, _ := a.MarshalCheckpoint()
	rng := rand.New(rand.NewPCG(1, 1))
	for n := 0; n < len(data); n += 1 + n/8 {
		if _, err := Restore(data[:n], rng); !errors.Is(err, ErrBadCheckpoint) {
			t.Fatalf("truncated to %d bytes: err %v, want ErrBadCheckpoint", n, err)
		}
	}
	for i := 0; i < len(data); i += 1 + i/64 {
		c := append([]byte(nil), data...)
		c[i] ^= 0x10
		_, err := Restore(c, rng)
		if !errors.Is(err, ErrBadCheckpoint) {
			t.Fatalf("bit flipped at %d: err %v, want ErrBadCheckpoint", i, err)
		}
	}
	if _, err := Restore(data, nil); err == nil {
		t.Error("Restore accepted a nil rand source")
	}
}

// TestDecodeCheckpointRejects feeds structurally wrong bodies past the
// checksum (as a corrupt but correctly checksummed file would).
func TestDecodeCheckpointRejects(t *testing.T) {
	a, _ := trainedAgent(t)
	good, _ := a.MarshalCheckpoint()
	body := good[len(ckptMagic) : len(good)-4]
	rng := rand.New(rand.NewPCG(1, 1))
	if _, err := decodeCheckpoint(body, rng); err != nil {
		t.Fatalf("good body: %v", err)
	}
	nanParams := append([]byte(nil), body...)
	// The last 8 bytes are the last obs variance; make it negative.
	copy(nanParams[len(nanParams)-8:], encodeFloats(nil, []float64{-1}))
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"trailing byte", append(append([]byte(nil), body...), 0), "bytes of state"},
		{"negative variance", nanParams, "negative observation variance"},
		{"empty", nil, "truncated"},
	}
	for _, tc := range tests {
		_, err := decodeCheckpoint(tc.body, rng)
		if !errors.Is(err, ErrBadCheckpoint) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want ErrBadCheckpoint mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestLoadPolicyRejects(t *testing.T) {
	a, _ := trainedAgent(t)
	arch, params, mean, variance, count, _ := a.MarshalPolicy()
	nan := append([]float64(nil), mean...)
	nan[0] = math.NaN()
	tests := []struct {
		name     string
		arch     string
		params   []byte
		mean, vr []float64
	}{
		{"other arch", "mlp/v9 obs=6", params, mean, variance},
		{"bad width", strings.Replace(arch, "obs=6", "obs=x", 1), params, mean, variance},
		{"short params", arch, params[:len(params)-8], mean, variance},
		{"missing stats", arch, params, nil, nil},
		{"nan mean", arch, params, nan, variance},
		{"stats without norm", strings.Replace(arch, "norm=running", "norm=none", 1), params, mean, variance},
	}
	for _, tc := range tests {
		if _, err := LoadPolicy(tc.arch, tc.params, tc.mean, tc.vr, count); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: err %v, want ErrBadSnapshot", tc.name, err)
		}
	}
}

// FuzzRestore: Restore never panics, and whatever it accepts re-marshals
// to the same bytes.
func FuzzRestore(f *testing.F) {
	a, _ := trainedAgent(f)
	good, _ := a.MarshalCheckpoint()
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(ckptMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Restore(data, rand.New(rand.NewPCG(1, 1)))
		if err != nil {
			return
		}
		again, err := r.MarshalCheckpoint()
		if err != nil || string(again) != string(data) {
			t.Fatalf("accepted checkpoint does not round-trip (err %v)", err)
		}
	})
}

// FuzzDecodeCheckpoint fuzzes the body parser behind the checksum: it never
// panics and never accepts trailing or missing bytes.
func FuzzDecodeCheckpoint(f *testing.F) {
	a, _ := trainedAgent(f)
	good, _ := a.MarshalCheckpoint()
	body := good[len(ckptMagic) : len(good)-4]
	f.Add(body)
	f.Add(body[:40])
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeCheckpoint(b, rand.New(rand.NewPCG(1, 1)))
	})
}

// FuzzLoadPolicy: LoadPolicy never panics on any architecture string and
// parameter bytes, and an accepted policy evaluates without panicking to a
// distribution whenever its probabilities are finite (huge but finite
// parameters may overflow the logits).
func FuzzLoadPolicy(f *testing.F) {
	a, _ := trainedAgent(f)
	arch, params, _, _, _, _ := a.MarshalPolicy()
	f.Add(arch, params)
	f.Add(strings.Replace(arch, "norm=running", "norm=none", 1), params)
	f.Add("ppo-categorical-mlp/v1 obs=1 hidden=1 act=tanh actions=2 norm=none", make([]byte, 8*9))
	f.Fuzz(func(t *testing.T, arch string, params []byte) {
		p, err := LoadPolicy(arch, params, nil, nil, 0)
		if err != nil {
			return
		}
		probs := make([]float64, p.NumActions())
		p.ActionProbs(make([]float64, p.ObsDim()), probs)
		s := 0.0
		for _, v := range probs {
			s += v
		}
		if finite(s) && math.Abs(s-1) > 1e-9 {
			t.Fatalf("probabilities sum to %v", s)
		}
	})
}
