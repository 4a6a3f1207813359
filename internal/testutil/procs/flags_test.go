package procs

import (
	"slices"
	"testing"
)

func TestWithFlag(t *testing.T) {
	for _, tc := range []struct {
		args, want []string
	}{
		{nil, []string{"-http", ""}},
		{[]string{"-listen", "127.0.0.1:53"}, []string{"-listen", "127.0.0.1:53", "-http", ""}},
		{[]string{"-http", "127.0.0.1:0"}, []string{"-http", "127.0.0.1:0"}},
		{[]string{"-listen", "127.0.0.1:53", "-http", "127.0.0.1:0"}, []string{"-listen", "127.0.0.1:53", "-http", "127.0.0.1:0"}},
		{[]string{"--http=127.0.0.1:0"}, []string{"--http=127.0.0.1:0"}},
		{[]string{"-http="}, []string{"-http="}},
		{[]string{"-http-rate", "1"}, []string{"-http-rate", "1", "-http", ""}},
	} {
		if got := WithFlag(tc.args, "http", ""); !slices.Equal(got, tc.want) {
			t.Errorf("WithFlag(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}
