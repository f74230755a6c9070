package main

import (
	"flag"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// TestFlagDefaults checks, for every command, that every flag writes into
// a field of a configuration the command bound (newConfig) and that the
// default it prints is that field's value in a fresh DefaultConfig of the
// configuration. The configurations are reset to their defaults first, so
// a default typed again in a flag's registration (fs.IntVar(&cfg.Workers,
// "workers", 3, …)) fails here as soon as it differs from the package's,
// and a flag registered onto a variable of its own fails too.
func TestFlagDefaults(t *testing.T) {
	for _, name := range commandNames(commands()) {
		c := lookupCommand(commands(), name)
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			fs, _ := c.setup()
			if len(fs.bound) == 0 {
				t.Fatal("no configuration bound")
			}
			for _, b := range fs.bound {
				b.ptr.Elem().Set(b.defaults())
			}
			n := 0
			fs.VisitAll(func(fl *flag.Flag) {
				n++
				addr, err := flagTarget(fl.Value)
				if err != nil {
					t.Errorf("--%s: %v", fl.Name, err)
					return
				}
				field, ok := boundField(fs.bound, addr)
				if !ok {
					t.Errorf("--%s writes into no configuration the command bound: register it onto a config field", fl.Name)
					return
				}
				if got := fl.Value.String(); got != fl.DefValue {
					t.Errorf("--%s prints default %q, but %s defaults to %q", fl.Name, fl.DefValue, field, got)
				}
			})
			if n == 0 {
				t.Error("no flags")
			}
		})
	}
}

// commandNames returns every command and subcommand name ("experiment
// ab"), sorted.
func commandNames(cmds map[string]command) []string {
	var names []string
	for n, c := range cmds {
		if c.subs == nil {
			names = append(names, n)
		}
		for s := range c.subs {
			names = append(names, n+" "+s)
		}
	}
	sort.Strings(names)
	return names
}

func lookupCommand(cmds map[string]command, name string) command {
	top, sub, ok := strings.Cut(name, " ")
	if ok {
		return cmds[top].subs[sub]
	}
	return cmds[top]
}

// flagTarget returns the address a flag value writes to: the pointer of the
// standard library's values (*intValue is a *int), or the target of ours.
func flagTarget(v flag.Value) (uintptr, error) {
	if t, ok := v.(interface{ target() any }); ok {
		return reflect.ValueOf(t.target()).Pointer(), nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer {
		return 0, fmt.Errorf("flag value %T: not a pointer and no target method", v)
	}
	return rv.Pointer(), nil
}

// boundField names the field of a bound configuration at addr.
func boundField(bound []boundConfig, addr uintptr) (string, bool) {
	for _, b := range bound {
		v := b.ptr.Elem()
		if path, ok := fieldAt(v, addr, v.Type().String()); ok {
			return path, true
		}
	}
	return "", false
}

// fieldAt finds the field of struct v (nested structs included) that starts
// at addr and is not itself a struct holding it deeper.
func fieldAt(v reflect.Value, addr uintptr, path string) (string, bool) {
	for i := range v.NumField() {
		f := v.Field(i)
		p := path + "." + v.Type().Field(i).Name
		start := f.UnsafeAddr()
		if addr < start || addr >= start+f.Type().Size() {
			continue
		}
		if f.Kind() == reflect.Struct {
			if sub, ok := fieldAt(f, addr, p); ok {
				return sub, true
			}
		}
		if addr == start {
			return p, true
		}
	}
	return "", false
}

// TestFlagTargetFindsFields checks the test's own machinery: a flag on a
// config field is found at its path, one on a variable of its own is not,
// and a re-typed default differs from the field's.
func TestFlagTargetFindsFields(t *testing.T) {
	type inner struct{ A, B int }
	type cfg struct {
		N     int
		Inner inner
		L     []string
	}
	fs := newFlagSet("x")
	c := newConfig(fs, func() cfg { return cfg{N: 2, Inner: inner{B: 7}} })
	fs.IntVar(&c.N, "n", 3, "re-typed default")
	fs.IntVar(&c.Inner.B, "b", c.Inner.B, "nested")
	fs.Var(listValue{&c.L}, "l", "list")
	own := fs.Int("own", 1, "a variable of its own")
	for _, b := range fs.bound {
		b.ptr.Elem().Set(b.defaults())
	}
	for name, want := range map[string]string{"n": "main.cfg.N", "b": "main.cfg.Inner.B", "l": "main.cfg.L"} {
		addr, err := flagTarget(fs.Lookup(name).Value)
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := boundField(fs.bound, addr); !ok || got != want {
			t.Errorf("--%s: field %q (found %v), want %q", name, got, ok, want)
		}
	}
	if addr, _ := flagTarget(fs.Lookup("own").Value); addr != reflect.ValueOf(own).Pointer() {
		t.Error("--own: wrong target")
	} else if _, ok := boundField(fs.bound, addr); ok {
		t.Error("--own found in the configuration")
	}
	if fl := fs.Lookup("n"); fl.Value.String() == fl.DefValue {
		t.Errorf("--n: re-typed default %s equals the field's %s", fl.DefValue, fl.Value.String())
	}
}
