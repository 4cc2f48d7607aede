package loopback

import "testing"

func TestHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST:5000": true, "127.0.0.1": true, "127.8.9.1:5000": true,
		"[::1]:5000": true, "::1": true, "[::1]": true,
		"10.0.0.1": false, "registry.example:443": false, "localhost.example": false, "": false,
	} {
		if got := Host(host); got != want {
			t.Errorf("Host(%q) = %v, want %v", host, got, want)
		}
	}
}
