package webhook

// firstNonEmpty returns the first of ids that is not empty.
func firstNonEmpty(ids ...string) string {
	for _, id := range ids {
		if id != "" {
			return id
		}
	}
	return ""
}
