// Package signing holds everything about keys, cosign simplesigning payloads
// and signatures. It never touches the network: the registry package builds
// on it, and the CLI and the port call the registry package.
package signing
