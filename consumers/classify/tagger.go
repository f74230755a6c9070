package classify

import (
	"encoding/binary"
	"fmt"
	"math"
)

// learn trains the model on one labelled record. Its prediction before the
// step is a held-out prediction: it goes into the threshold histogram and
// the held-out calibration.
func (c *Classifier) learn(x *[NumFeatures]float64, crisis bool) {
	p := c.model.Update(x, crisis)
	c.th.observe(p, crisis)
	c.heldOut.Observe(p, crisis)
	c.labelled++
	if c.labelled%thresholdEvery == 0 {
		c.thr = c.th.threshold(c.cfg.Objective)
	}
}

// Learned reports whether the learned tagger decides the unlabelled records
// now: Tagger is TaggerLearned and at least TaggerWarmUp labelled records
// have been trained on. Before that the rules decide.
func (c *Classifier) Learned() bool {
	return c.cfg.Tagger == TaggerLearned && c.labelled >= c.cfg.TaggerWarmUp
}

// Labelled returns the number of labelled records the model trained on.
func (c *Classifier) Labelled() int64 { return c.labelled }

// Threshold returns the learned tagger's decision threshold on P(crisis),
// chosen for the configured Objective every 256 labelled records.
func (c *Classifier) Threshold() float64 { return c.thr }

// Model returns the learned model (read-only use: Prob, Weights).
func (c *Classifier) Model() *Logistic { return c.model }

// Prob returns the model's P(crisis | signals) for md and value without
// changing the Classifier.
func (c *Classifier) Prob(md map[string]string, value float64) float64 {
	var x [NumFeatures]float64
	c.Features(md, value, &x)
	return c.model.Prob(&x)
}

// HeldOut returns the calibration of the model's predictions on the
// labelled records, each made before the model trained on that record
// (prequential, so every prediction is on a record the model had not
// seen).
func (c *Classifier) HeldOut() Calibration { return c.heldOut }

// stateMagic starts an encoded classifier state, format version 1.
var stateMagic = [8]byte{'A', 'E', 'L', 'P', 'T', 'G', 'R', 1}

// AppendState appends the learned state (the model, the threshold
// histogram, the threshold, the labelled count and the held-out
// calibration) to b, for Config.State. The rules' P² value estimate is not
// included: it re-warms in Config.WarmUp values.
func (c *Classifier) AppendState(b []byte) []byte {
	b = append(b, stateMagic[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(c.labelled))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(c.thr))
	b = c.model.AppendBinary(b)
	b = c.th.appendBinary(b)
	h := &c.heldOut
	b = binary.LittleEndian.AppendUint64(b, h.n)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(h.sumSq))
	for i := range h.binN {
		b = binary.LittleEndian.AppendUint64(b, h.binN[i])
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(h.binP[i]))
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(h.binY[i]))
	}
	return b
}

const calibrationSize = 16 + 24*CalibrationBins

// restore decodes a state written by AppendState into c.
func (c *Classifier) restore(b []byte) error {
	if len(b) < 24 || [8]byte(b[:8]) != stateMagic {
		return fmt.Errorf("%w: not a version-1 tagger state", ErrBadState)
	}
	labelled := int64(binary.LittleEndian.Uint64(b[8:]))
	thr := math.Float64frombits(binary.LittleEndian.Uint64(b[16:]))
	if labelled < 0 || !(thr >= 0 && thr <= 1) {
		return fmt.Errorf("%w: labelled count %d or threshold %v out of range", ErrBadState, labelled, thr)
	}
	model, rest, err := decodeLogistic(b[24:])
	if err != nil {
		return err
	}
	th, rest, err := decodeThresholder(rest)
	if err != nil {
		return err
	}
	if len(rest) != calibrationSize {
		return fmt.Errorf("%w: calibration: %d bytes, want %d", ErrBadState, len(rest), calibrationSize)
	}
	var h Calibration
	next := func() uint64 {
		v := binary.LittleEndian.Uint64(rest)
		rest = rest[8:]
		return v
	}
	h.n, h.sumSq = next(), math.Float64frombits(next())
	for i := range h.binN {
		h.binN[i], h.binP[i], h.binY[i] = next(), math.Float64frombits(next()), math.Float64frombits(next())
	}
	// The configuration's learning rate and L2 win over the saved ones, so
	// a restart can change them; the weights and accumulators carry over.
	model.lr, model.l2 = c.cfg.LearningRate, c.cfg.L2
	c.model, c.th, c.thr, c.labelled, c.heldOut = model, th, thr, labelled, h
	return nil
}
