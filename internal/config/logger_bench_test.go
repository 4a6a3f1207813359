package config

import (
	"io"
	"log/slog"
	"testing"
)

// A disabled debug record costs the same with the level in a
// slog.LevelVar (which a reload changes) as with a fixed level.
func BenchmarkDisabledDebug(b *testing.B) {
	fixed, err := Logger(io.Discard, "text", "info")
	if err != nil {
		b.Fatal(err)
	}
	lv := new(slog.LevelVar)
	live, err := LevelLogger(io.Discard, "text", lv)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		log  *slog.Logger
	}{{"fixed", fixed}, {"levelvar", live}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bc.log.Debug("miss", "name", "www.example.com.")
			}
		})
	}
}
