package ui

import "slices"

// ActionPatterns lists the POST patterns of every form the console
// serves (its pages' actions), sorted: for tests that must cover each.
func ActionPatterns(u *UI) []string {
	var out []string
	for _, p := range u.pages {
		for pattern := range p.Actions {
			out = append(out, pattern)
		}
	}
	slices.Sort(out)
	return out
}
