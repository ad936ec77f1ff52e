package analysis

import (
	"context"
	"fmt"
	"time"
)

// A consumer of the queue's group is created by its first read and, left alone, would
// stay in the group forever: every restart of a worker adds one. A Worker removes its own
// consumer when it stops cleanly, and its janitor removes those of workers that died:
// consumers idle for QueueConfig.ConsumerIdle that hold no pending entries. A dead
// worker's pending entries are reclaimed by the live workers after the lease (XAUTOCLAIM
// moves them to the claimer), so its consumer empties and is then removed.

// removeConsumers removes the consumers of the group (only those named, if any) that hold
// no pending entries and have been idle at least minIdle, never keep. It returns the names
// removed.
func (q *Queue) removeConsumers(ctx context.Context, minIdle time.Duration, keep string, only ...string) ([]string, error) {
	args := make([]any, 0, 3+len(only))
	args = append(args, q.cfg.Group, minIdle.Milliseconds(), keep)
	for _, c := range only {
		args = append(args, c)
	}
	res, err := janitorScript.Run(ctx, q.rdb, []string{q.keys.stream()}, args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("analysis: remove idle consumers: %w", err)
	}
	return res, nil
}

// janitor removes dead consumers every ConsumerIdle/2 (at least every minute) until ctx
// ends. Errors are counted and retried at the next sweep.
func (w *Worker) janitor(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	idle := w.q.cfg.ConsumerIdle
	t := time.NewTicker(min(max(idle/2, 10*time.Millisecond), time.Minute))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		removed, err := w.q.removeConsumers(cctx, idle, w.cfg.Consumer)
		cancel()
		if err != nil {
			w.redisErrors.Inc()
			continue
		}
		if len(removed) > 0 {
			w.removed.WithLabelValues("idle").Add(float64(len(removed)))
			w.log.Info("analysis: removed dead consumers from the queue's group", "consumers", removed, "idle_for", idle)
		}
	}
}

// leave removes the worker's own consumer at a clean stop, once everything it held is
// settled; if some entry is still pending (a settlement failed), the consumer stays for
// the janitors to remove after that entry is reclaimed.
func (w *Worker) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	removed, err := w.q.removeConsumers(ctx, 0, "", w.cfg.Consumer)
	switch {
	case err != nil:
		w.redisErrors.Inc()
		w.log.Warn("analysis: could not leave the queue's group; a janitor will remove the consumer", "consumer", w.cfg.Consumer, "err", err)
	case len(removed) == 0:
		w.log.Info("analysis: consumer keeps pending jobs; it is removed after they are reclaimed", "consumer", w.cfg.Consumer)
	default:
		w.removed.WithLabelValues("stopped").Inc()
	}
}
