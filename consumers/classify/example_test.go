package classify_test

import (
	"fmt"

	"github.com/aelp/aelp/consumers/classify"
)

func Example() {
	cfg := classify.DefaultConfig()
	cfg.WarmUp = 100
	cfg.Tagger = classify.TaggerRules
	c, err := classify.New(cfg)
	if err != nil {
		panic(err)
	}
	var acc classify.Accuracy
	for i := 1; i <= 100; i++ { // warm the value percentile up on values 1…100
		c.Classify(nil, float64(i))
	}
	records := []map[string]string{
		{classify.KeyEventType: classify.LabelCrisis},
		{classify.KeyProfileKeywords: "toddler, Urgent", classify.KeyTrueSegment: classify.LabelCrisis},
		{classify.KeyCrisisEngagement: "0.910", classify.KeyUrgentSearchCount: "4"},
		{classify.KeyCampaignID: "crisis_support", classify.KeyTrueSegment: classify.LabelRegular},
		{classify.KeyCampaignID: "family_deals", classify.KeyTrueSegment: classify.LabelCrisis},
	}
	values := []float64{1, 1, 1, 1, 150}
	for i, md := range records {
		d := c.Classify(md, values[i])
		fmt.Printf("crisis=%v source=%v rule score=%.2f\n", d.Crisis, d.Source, d.RuleScore)
		if truth, ok := c.Truth(md); ok {
			acc.Observe(d, truth)
		}
	}
	r := acc.Report()
	fmt.Printf("precision=%.2f recall=%.2f counts=%+v\n", r.Overall.Precision, r.Overall.Recall, r.Overall.Counts)
	// Output:
	// crisis=true source=LABEL rule score=1.00
	// crisis=true source=METADATA rule score=1.00
	// crisis=true source=METADATA rule score=1.20
	// crisis=false source=DEFAULT rule score=0.40
	// crisis=true source=VALUE rule score=1.00
	// precision=1.00 recall=1.00 counts={TP:2 FP:0 FN:0 TN:1}
}
