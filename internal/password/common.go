package password

import (
	_ "embed"
	"strings"
	"sync"
)

// commonText is zxcvbn's list of the 30,000 most frequent passwords,
// lower-cased, one a line; see NOTICE and internal/gencommon.
//
//go:embed common.txt
var commonText string

// commonSet is built on first use and never modified afterwards.
var commonSet = sync.OnceValue(func() map[string]struct{} {
	lines := strings.Split(strings.TrimSpace(commonText), "\n")
	set := make(map[string]struct{}, len(lines))
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			set[l] = struct{}{}
		}
	}
	return set
})

// IsCommon reports whether pw, compared case-insensitively, is on the
// embedded list of common passwords. The first call builds the set (a few
// milliseconds); later calls are a map lookup.
func IsCommon(pw string) bool {
	_, ok := commonSet()[strings.ToLower(pw)]
	return ok
}

// CommonCount returns how many distinct passwords the embedded list holds.
func CommonCount() int { return len(commonSet()) }
