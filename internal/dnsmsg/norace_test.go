//go:build !race

package dnsmsg

// raceEnabled says the race detector is on: it allocates where a plain
// build does not, so allocation counts are not checked.
const raceEnabled = false
