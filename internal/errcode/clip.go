package errcode

import "unicode/utf8"

// Clip bounds text that ends up in an error message — often chosen by
// whoever wrote a file or runs a server — to about n bytes, cut at a
// character boundary, with "…" marking the cut.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
