//go:build !unix

package port

import "os"

// fileIdentity tells whether a key file is still the one that was loaded;
// without inode numbers, size and modification time have to do.
type fileIdentity struct {
	size     int64
	modNanos int64
}

func identityOf(info os.FileInfo) fileIdentity {
	return fileIdentity{size: info.Size(), modNanos: info.ModTime().UnixNano()}
}
