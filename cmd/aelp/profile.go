package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// profileConfig is the profiling flags of a command (aelp run).
type profileConfig struct {
	// CPUProfile, when set, is the file the command's CPU profile is
	// written to (pprof format, the whole command).
	CPUProfile string
	// MemProfile, when set, is the file the command's heap profile is
	// written to at its end (allocations since the start included:
	// go tool pprof -sample_index=alloc_space).
	MemProfile string
}

func defaultProfileConfig() profileConfig { return profileConfig{} }

// profileFlags registers --cpuprofile and --memprofile.
func profileFlags(fs *flagSet) *profileConfig {
	p := newConfig(fs, defaultProfileConfig)
	fs.StringVar(&p.CPUProfile, "cpuprofile", p.CPUProfile, "write a CPU profile of the command to this `file` (go tool pprof)")
	fs.StringVar(&p.MemProfile, "memprofile", p.MemProfile, "write a heap profile (allocations included) to this `file` at the end")
	return p
}

// start starts the CPU profile if asked for; stop ends it and writes the
// heap profile. stop's error is the first write that failed.
func (p profileConfig) start() (stop func() error, err error) {
	var cpu *os.File
	if p.CPUProfile != "" {
		if cpu, err = os.Create(p.CPUProfile); err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			cpu.Close()
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
	}
	return func() error {
		var first error
		if cpu != nil {
			pprof.StopCPUProfile()
			if err := cpu.Close(); err != nil {
				first = fmt.Errorf("cpu profile: %w", err)
			}
		}
		if p.MemProfile != "" {
			if err := writeHeapProfile(p.MemProfile); err != nil && first == nil {
				first = err
			}
		}
		return first
	}, nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("memory profile: %w", err)
	}
	runtime.GC() // the heap figures up to date
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("memory profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("memory profile: %w", err)
	}
	return nil
}
