//go:build unix

package port

import (
	"os"
	"syscall"
)

// fileIdentity tells whether a key file is still the one that was loaded.
type fileIdentity struct {
	device, inode uint64
	size          int64
	modNanos      int64
}

func identityOf(info os.FileInfo) fileIdentity {
	id := fileIdentity{size: info.Size(), modNanos: info.ModTime().UnixNano()}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		id.device, id.inode = uint64(st.Dev), uint64(st.Ino)
	}
	return id
}
