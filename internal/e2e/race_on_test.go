//go:build race

package e2e

// raceBuild makes TestMain build the daemons with the race detector when the
// tests themselves run under -race, so end-to-end traffic checks them too.
const raceBuild = true
