package main

import "testing"

func TestSplitNameTag(t *testing.T) {
	for in, want := range map[string][2]string{
		"app:1":                      {"app", "1"},
		"127.0.0.1:5000/team/app:v2": {"127.0.0.1:5000/team/app", "v2"},
		"localhost:5000/app":         {"localhost:5000/app", "latest"},
		"app":                        {"app", "latest"},
	} {
		if n, tag := splitNameTag(in); n != want[0] || tag != want[1] {
			t.Errorf("splitNameTag(%q) = %q, %q", in, n, tag)
		}
	}
}
