package classify

import (
	"strconv"
	"strings"
	"testing"
)

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		in     string
		want   float64
		wantOK bool
	}{
		{"0.700", 0.7, true}, {" 1 ", 1, true}, {"-0.5", -0.5, true}, {"+.25", 0.25, true},
		{"3.", 3, true}, {"1e-3", 0.001, true}, {"2E+02", 200, true},
		{"", 0, false}, {".", 0, false}, {"-", 0, false}, {"e5", 0, false}, {"1e", 0, false},
		{"1e100", 0, false}, {"0x1p-2", 0, false}, {"1_000", 0, false}, {"NaN", 0, false},
		{"Inf", 0, false}, {"1.2.3", 0, false}, {"1,5", 0, false}, {strings.Repeat("1", 33), 0, false},
	}
	for _, tt := range tests {
		got, ok := parseDecimal(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseDecimal(%q) = %v, %v, want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestParseCount(t *testing.T) {
	tests := []struct {
		in     string
		want   int64
		wantOK bool
	}{
		{"0", 0, true}, {"3", 3, true}, {" +7 ", 7, true}, {"-2", -2, true},
		{"999999999999999999", 999999999999999999, true},
		{"", 0, false}, {"+", 0, false}, {"3.0", 0, false}, {"1e3", 0, false},
		{"1 2", 0, false}, {"9999999999999999999", 0, false}, {"x", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseCount(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseCount(%q) = %v, %v, want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

// FuzzParseNumbers checks the metadata number decoders: never panic; an
// accepted decimal is finite and equals strconv.ParseFloat of the trimmed
// input; an accepted count equals strconv.ParseInt of it.
func FuzzParseNumbers(f *testing.F) {
	for _, s := range []string{"0.700", " 3 ", "-1e-05", "+.5", "1e99", "NaN", "0x10", "1_0", "", "９"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		trimmed := strings.TrimSpace(s)
		if v, ok := parseDecimal(s); ok {
			want, err := strconv.ParseFloat(trimmed, 64)
			if err != nil || v != want {
				t.Fatalf("parseDecimal(%q) = %v, strconv says %v, %v", s, v, want, err)
			}
		}
		if n, ok := parseCount(s); ok {
			want, err := strconv.ParseInt(trimmed, 10, 64)
			if err != nil || n != want {
				t.Fatalf("parseCount(%q) = %v, strconv says %v, %v", s, n, want, err)
			}
		}
	})
}

// FuzzClassify checks that arbitrary metadata never panics Classify and that
// every decision is consistent: a valid Source, a finite score, crisis
// exactly for LABEL crisis, METADATA and VALUE.
func FuzzClassify(f *testing.F) {
	f.Add("CRISIS_PARENT", "crisis, toddler", "0.9", "4", "crisis_support", 1.5)
	f.Add("bogus", " , ,URGENT", "1e99", "-3", "x", -2.0)
	f.Fuzz(func(t *testing.T, label, kws, eng, urgent, camp string, value float64) {
		cfg := DefaultConfig()
		cfg.WarmUp = 5
		c := mustNew(t, cfg)
		md := map[string]string{KeyEventType: label, KeyProfileKeywords: kws,
			KeyCrisisEngagement: eng, KeyUrgentSearchCount: urgent, KeyCampaignID: camp}
		for i := range 8 {
			d := c.Classify(md, value*float64(i))
			if d.Source < 0 || int(d.Source) >= NumSources || d.Score != d.Score {
				t.Fatalf("invalid decision %+v", d)
			}
			wantCrisis := d.Source == SourceMetadata || d.Source == SourceValue
			if d.Source == SourceLabel {
				wantCrisis = strings.EqualFold(strings.TrimSpace(label), LabelCrisis)
			}
			if d.Crisis != wantCrisis {
				t.Fatalf("decision %+v: Crisis inconsistent with its source", d)
			}
		}
	})
}
