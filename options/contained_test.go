package options

import (
	"strings"
	"testing"
)

// Arguments whose bundle would escape or not start are refused when parsed,
// before anything is generated (spec.Validate refuses the same in a finished
// configuration).
func TestParseRefusesUnstartable(t *testing.T) {
	tests := []struct{ args, want string }{
		{`{"args":["x"],"mounts":{"/":{"type":"tmpfs","source":"tmpfs"}}}`, "a mount cannot replace the root file system"},
		{`{"args":["x"],"mounts":{"/proc":{"type":"tmpfs","source":"tmpfs"}}}`, `/proc must be a mount of type "proc"`},
		{`{"args":["x"],"mounts":{"/b":{"type":"none","source":".","options":["rbind","rw"]}}}`, `source must be an absolute host path for a bind mount, not "."`},
		{`{"args":["x"],"hostname":"` + strings.Repeat("h", 65) + `"}`, "`hostname` is 65 bytes long"},
		{`{"args":["x"],"workingDir":"/proc/self"}`, "`workingDir` \"/proc/self\" is inside /proc"},
		{`{"args":["x"],"workingDir":"/sys/kernel"}`, "`workingDir` \"/sys/kernel\" is inside /sys"},
		{`{"args":["x"],"capabilities":{"effective":["KILL"]}}`, "CAP_KILL is effective but not permitted"},
		{`{"args":["x"],"capabilities":{"ambient":["KILL"]}}`, "CAP_KILL is ambient but not both permitted and inheritable"},
		{`{"args":["x"],"capabilities":{"ambient":["KILL"],"permitted":["KILL"]}}`, "CAP_KILL is ambient but not both permitted and inheritable"},
		{`{"args":["x"],"capabilities":{"ambient":["KILL"],"inheritable":["KILL"]}}`, "CAP_KILL is ambient but not both permitted and inheritable"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.args), "x86_64-linux")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%s) = %v, want an error containing %q", tt.args, err, tt.want)
		}
	}
	// A tmpfs replacing /sys makes a working directory there possible.
	if _, err := Parse([]byte(`{"args":["x"],"workingDir":"/sys/x","mounts":{"/sys":{"type":"tmpfs","source":"tmpfs"}}}`), "x86_64-linux"); err != nil {
		t.Errorf("workingDir under a /sys tmpfs: %v", err)
	}
}
