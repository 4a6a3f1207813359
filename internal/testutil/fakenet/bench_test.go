package fakenet

import (
	"slices"
	"testing"
)

// iteration runs the cleanups registered during one benchmark iteration at
// its end, so that the servers of one Start are gone before the next.
type iteration struct {
	testing.TB
	cleanups []func()
}

func (it *iteration) Cleanup(f func()) { it.cleanups = append(it.cleanups, f) }

func (it *iteration) end() {
	for _, f := range slices.Backward(it.cleanups) {
		f()
	}
	it.cleanups = nil
}

// BenchmarkStart is the cost of building and stopping one fake Internet
// once the process's keys exist: signing every zone, starting every nsd
// and waiting until each answers.
func BenchmarkStart(b *testing.B) {
	it := &iteration{TB: b}
	Start(it, Options{})
	it.end()
	for b.Loop() {
		Start(it, Options{})
		it.end()
	}
}
