package layers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/aelp/aelp"

// Layers, lowest first (see the package documentation).
const (
	base = iota
	cores
	plumbing
	roles
	composition
	command
)

var layerNames = []string{"base", "cores", "plumbing", "roles", "composition", "command"}

// layerOf places a package of the module (its path inside the module) in
// a layer; ok is false for a package no rule places: add it here.
func layerOf(rel string) (layer int, ok bool) {
	under := func(dir string) bool { return rel == dir || strings.HasPrefix(rel, dir+"/") }
	switch {
	case rel == "schemas" || rel == "internal/stats":
		return base, true
	case rel == "producers/sim" || rel == "consumers/classify" || rel == "learner/replay" ||
		rel == "learner/ppo" || rel == "learner/train" || rel == "consumers/join" || rel == "learner/ope":
		return cores, true
	case under("internal"):
		return plumbing, true
	case rel == "producers" || rel == "consumers" || rel == "learner" || under("learner/policy") || under("serve"):
		return roles, true
	case under("app"):
		return composition, true
	case rel == "cmd/aelp":
		return command, true
	}
	return 0, false
}

// goList runs `go list` with args and returns its standard output.
func goList(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

type listedPackage struct {
	ImportPath string
	Imports    []string
}

// modulePackages returns the module's packages and their non-test imports.
func modulePackages(t *testing.T) []listedPackage {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(goList(t, "-json", module+"/...")))
	var pkgs []listedPackage
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages of %s", len(pkgs), module)
	}
	return pkgs
}

// rel is the path of an import path inside the module ("" and false for
// one outside it).
func rel(path string) (string, bool) {
	if path == module {
		return "", true
	}
	return strings.CutPrefix(path, module+"/")
}

func TestLayers(t *testing.T) {
	for _, p := range modulePackages(t) {
		from, _ := rel(p.ImportPath)
		fl, ok := layerOf(from)
		if !ok {
			t.Errorf("%s is in no layer: place it in layerOf (internal/layers)", from)
			continue
		}
		for _, imp := range p.Imports {
			to, ok := rel(imp)
			if !ok {
				continue
			}
			for _, err := range checkImport(from, fl, to) {
				t.Error(err)
			}
		}
	}
}

// checkImport returns what is wrong with package from (in layer fl)
// importing package to.
func checkImport(from string, fl int, to string) []error {
	tl, ok := layerOf(to)
	if !ok {
		return []error{fmt.Errorf("%s imports %s, which is in no layer", from, to)}
	}
	var errs []error
	if tl > fl {
		errs = append(errs, fmt.Errorf("%s (%s) imports %s (%s): imports run from a higher layer to a lower one",
			from, layerNames[fl], to, layerNames[tl]))
	}
	if strings.HasPrefix(from, "internal/") {
		for _, dom := range []string{"producers", "consumers", "learner", "app", "cmd"} {
			if to == dom || strings.HasPrefix(to, dom+"/") {
				errs = append(errs, fmt.Errorf("%s imports %s: nothing under internal/ imports %s/", from, to, dom))
			}
		}
	}
	return errs
}

// TestCheckImport checks the rules themselves on made-up edges.
func TestCheckImport(t *testing.T) {
	tests := []struct {
		from, to string
		bad      bool
	}{
		{"internal/plot", "schemas", false},
		{"producers/sim", "internal/stats", false},
		{"producers", "learner/policy", false},
		{"app/pipeline", "producers", false},
		{"cmd/aelp", "app/bench", false},
		{"internal/kafkax", "producers", true},
		{"internal/plot", "learner/ppo", true}, // a core, but under learner/
		{"learner/ppo", "internal/kafkax", true},
		{"producers", "app/pipeline", true},
		{"schemas", "producers/sim", true},
		{"learner", "nosuch/pkg", true},
	}
	for _, tc := range tests {
		fl, ok := layerOf(tc.from)
		if !ok {
			t.Fatalf("%s: no layer", tc.from)
		}
		if errs := checkImport(tc.from, fl, tc.to); (len(errs) > 0) != tc.bad {
			t.Errorf("%s → %s: errors %v, want bad=%v", tc.from, tc.to, errs, tc.bad)
		}
	}
}

// TestBinaryLinksNoTesting: the aelp binary does not link the testing
// package (micro-benchmarks belong to go test -bench).
func TestBinaryLinksNoTesting(t *testing.T) {
	for _, dep := range strings.Fields(string(goList(t, "-deps", module+"/cmd/aelp"))) {
		if dep == "testing" {
			t.Fatalf("go list -deps ./cmd/aelp includes testing; find the importer with: go list -f '{{.ImportPath}} {{.Imports}}' -deps ./cmd/aelp | grep -w testing")
		}
	}
}
