// The Retry-After header.

package retry

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ParseRetryAfter reads delay-seconds or an HTTP date (relative to now), capped at
// limit (so absurd values cannot overflow); ok is false for a missing or
// unreadable value.
func ParseRetryAfter(v string, now time.Time, limit time.Duration) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(limit/time.Second) {
			return limit, true
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), limit), true
	}
	return 0, false
}
