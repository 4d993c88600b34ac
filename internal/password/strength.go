package password

import (
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
	"github.com/trustelem/zxcvbn/match"
)

// MaxStrength is the highest Strength score.
const MaxStrength = 4

// maxScored is how many bytes of a password Strength looks at: zxcvbn's
// matching grows faster than linearly with length, and anything this long
// that is not a repetition scores 4 anyway.
const maxScored = 100

// Strength estimates how guessable pw is with zxcvbn (the
// github.com/trustelem/zxcvbn port of Dropbox's zxcvbn 4.4.2): 0 (too
// guessable, < 10^3 guesses), 1 (< 10^6), 2 (< 10^8), 3 (< 10^10) or 4. It
// matches dictionary words, names, common passwords, l33t substitutions,
// keyboard patterns, sequences, repeats, dates, and the userInputs (such as
// the username) which it treats as the most guessable words. hint is a short
// suggestion aimed at the weakest pattern found, or "" when there is nothing
// to say. Only the first 100 bytes of pw are scored. A pw that is not valid
// UTF-8 scores 0, and one of at most 3 distinct characters at most 1.
// Strength is safe for concurrent use.
func Strength(pw string, userInputs ...string) (score int, hint string) {
	if len(pw) > maxScored {
		pw = pw[:maxScored]
		for len(pw) > 0 && !utf8.ValidString(pw) {
			pw = pw[:len(pw)-1] // do not cut a character in half
		}
	}
	if !utf8.ValidString(pw) {
		return 0, "use valid text"
	}
	res := zxcvbn.PasswordStrength(pw, userInputs)
	if res.Score > 1 && fewDistinct(pw) {
		// The port under-counts repeats of non-ASCII characters
		// ("éééééé…" scores 4); a password of at most 3 distinct
		// characters is guessable whatever its length.
		return 1, "avoid repeated characters and words"
	}
	if res.Score >= MaxStrength {
		return res.Score, ""
	}
	return res.Score, hintFor(res.Sequence)
}

// fewDistinct reports whether pw uses at most 3 distinct characters.
func fewDistinct(pw string) bool {
	var seen [3]rune
	n := 0
	for _, r := range pw {
		if n > 0 && (seen[0] == r || n > 1 && seen[1] == r || n > 2 && seen[2] == r) {
			continue
		}
		if n == len(seen) {
			return false
		}
		seen[n] = r
		n++
	}
	return true
}

// hintFor explains the longest guessable pattern in seq, in the spirit of
// zxcvbn's feedback (which the Go port lacks).
func hintFor(seq []*match.Match) string {
	var worst *match.Match
	for _, m := range seq {
		if m.Pattern == "bruteforce" {
			continue
		}
		if worst == nil || len(m.Token) > len(worst.Token) {
			worst = m
		}
	}
	const more = "add another word or two; uncommon words are better"
	if worst == nil {
		return more
	}
	switch worst.Pattern {
	case "dictionary":
		switch {
		case worst.DictionaryName == "user_inputs":
			return "avoid your username and other personal details"
		case worst.DictionaryName == "passwords":
			return "avoid common passwords and small variations of them"
		case worst.L33t:
			return "predictable substitutions like '@' for 'a' do not help much"
		case worst.Reversed:
			return "reversed words are not much harder to guess"
		case worst.DictionaryName == "surnames" || worst.DictionaryName == "male_names" || worst.DictionaryName == "female_names":
			return "names and surnames are easy to guess; " + more
		}
		return "a single common word is easy to guess; " + more
	case "spatial":
		return "avoid keyboard patterns like qwerty or asdf"
	case "repeat":
		return "avoid repeated characters and words"
	case "sequence":
		return "avoid sequences like abc or 6543"
	case "date", "regex":
		return "avoid dates and years"
	}
	return more
}
