package store

// newSyncGroup returns a Group whose callers share flushes: each queues its
// flush function, and a group runs its first one once for all its members.
// The flush starts after every member arrived, so it covers their writes.
// Two hundred webhooks acknowledged at once then cost a handful of msyncs
// instead of two hundred in a row.
func newSyncGroup() *Group[func() error] {
	return NewGroup(func(flushes []func() error) []error {
		err := flushes[0]()
		errs := make([]error, len(flushes))
		for i := range errs {
			errs[i] = err
		}
		return errs
	}, func(func() error) int { return 0 }, 0)
}
