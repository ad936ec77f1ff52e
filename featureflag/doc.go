// Package featureflag is feature flags for bots: on/off, percentage rollouts with deterministic
// bucketing by (flag, user), targeting by user id and by attributes, and variants.
//
// Definitions live in Redis; every change is recorded (who, when, before, after) in a
// bounded stream and announced on a core NATS subject. Each process evaluates from a
// local in-process copy that Run reloads on every announcement and periodically, so an
// evaluation is a map lookup and a hash — no network round trip. A flag the copy does
// not hold evaluates to the caller's default.
//
// The main calls:
//
//	fl := featureflag.New(rdb, nc, featureflag.Config{}, log, reg)
//	go fl.Run(ctx)
//	err := fl.Set(ctx, featureflag.Flag{Key: "new-ui", Enabled: true,
//		Rollout: []featureflag.Share{{Variant: "on", Percent: 10}, {Variant: "off", Percent: 90}}}, "alice")
//	if fl.Bool("new-ui", featureflag.User{ID: "user-42"}, false) { ... }
package featureflag
