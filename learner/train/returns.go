package train

import "github.com/aelp/aelp/internal/stats"

// maxOpenEpisodes bounds the return tracker's memory: past it, open
// episodes are forgotten (their records were lost or belong to another
// reader).
const maxOpenEpisodes = 200_000

// Returns are the returns of the episodes that ended in a window, per true
// segment (see Trainer.TakeReturns).
type Returns struct {
	// Crisis and Regular accumulate the return of each finished episode of
	// a truly crisis and a truly regular user.
	Crisis, Regular stats.Running
}

// episodeTracker sums rewards per episode as the behaviour policy's
// experiences arrive, to report the mean return per true segment. Journeys
// are keyed by user, so one episode's experiences arrive in order (from
// one partition of the tagged topic).
type episodeTracker struct {
	open   map[string]float64
	window Returns
}

func newEpisodeTracker() episodeTracker { return episodeTracker{open: map[string]float64{}} }

// observe adds one experience of known ground truth.
func (e *episodeTracker) observe(episode string, reward float64, done bool, tr truth) {
	r := e.open[episode] + reward
	if !done {
		if len(e.open) >= maxOpenEpisodes {
			clear(e.open)
		}
		e.open[episode] = r
		return
	}
	delete(e.open, episode)
	if tr == truthCrisis {
		e.window.Crisis.Add(r)
	} else {
		e.window.Regular.Add(r)
	}
}

// take returns the window's returns and starts a new window.
func (e *episodeTracker) take() Returns {
	w := e.window
	e.window = Returns{}
	return w
}
