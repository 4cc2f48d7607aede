package signing

import (
	"os"
	"sync"
)

// envPasswordVar is cosign's variable for the password of an encrypted key.
const envPasswordVar = "COSIGN_PASSWORD"

// taken holds COSIGN_PASSWORD once TakeEnvPassword moved it out of the
// environment.
var taken struct {
	sync.Mutex
	done  bool
	value string
	set   bool
}

// TakeEnvPassword moves COSIGN_PASSWORD from the process environment into
// memory, so that no child process (a docker credential helper, say)
// inherits it; LookupEnvPassword still sees it. The program calls it once
// at start.
func TakeEnvPassword() {
	taken.Lock()
	defer taken.Unlock()
	if taken.done {
		return
	}
	taken.value, taken.set = os.LookupEnv(envPasswordVar)
	taken.done = true
	_ = os.Unsetenv(envPasswordVar)
}

// LookupEnvPassword is COSIGN_PASSWORD as the program started with it
// (or, before TakeEnvPassword, as the environment has it now).
func LookupEnvPassword() (string, bool) {
	taken.Lock()
	defer taken.Unlock()
	if taken.done {
		return taken.value, taken.set
	}
	return os.LookupEnv(envPasswordVar)
}
