package settings

import (
	"reflect"
	"testing"
)

func TestResolveOrder(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	config := Values{SignKey: "/cfg/k.key", RekorURL: "https://cfg", RekorPublicKey: "/cfg/r.pub",
		Annotations: map[string]string{"team": "erlang", "env": "cfg"}, Recursive: true}

	got := Resolve(Values{}, getenv, config, Sign)
	if !reflect.DeepEqual(got, config) {
		t.Fatalf("config alone: %+v", got)
	}
	env = map[string]string{EnvSignKey: "env.key", "OCISIGN_REKOR_URL": "https://env", "SIGSTORE_REKOR_PUBLIC_KEY": "env.pub"}
	got = Resolve(Values{}, getenv, config, Sign)
	if got.SignKey != "env.key" || got.RekorURL != "https://env" || got.RekorPublicKey != "env.pub" {
		t.Fatalf("environment over config: %+v", got)
	}
	got = Resolve(Values{SignKey: "flag.key", RekorURL: "https://flag", RekorPublicKey: "flag.pub",
		Annotations: map[string]string{"env": "flag"}}, getenv, config, Sign)
	want := Values{SignKey: "flag.key", RekorURL: "https://flag", RekorPublicKey: "flag.pub",
		Annotations: map[string]string{"team": "erlang", "env": "flag"}, Recursive: true}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("explicit over all:\n got %+v\nwant %+v", got, want)
	}
	// verify requires only what it is given.
	got = Resolve(Values{Annotations: map[string]string{"a": "b"}}, getenv, config, Verify)
	if !reflect.DeepEqual(got.Annotations, map[string]string{"a": "b"}) {
		t.Fatalf("verify annotations: %+v", got.Annotations)
	}
}
