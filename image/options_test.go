package image

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	good := []string{"hello", "a", "team/app", "registry.example/team/app", "localhost:5000/app", "my-app_x.y", "a__b", "a---b", "127.0.0.1:5000/x/y/z"}
	bad := []string{"", "Hello", "app:tag", "-app", "app-", "team//app", "app/", "/app", "a..b", "a b", strings.Repeat("a", 256)}
	for _, n := range good {
		if err := CheckName(n); err != nil {
			t.Errorf("%q refused: %v", n, err)
		}
	}
	for _, n := range bad {
		if err := CheckName(n); err == nil {
			t.Errorf("%q accepted", n)
		}
	}
}

func TestCheckTag(t *testing.T) {
	good := []string{"latest", "v1.2.3", "_x", "A-b_c.d", strings.Repeat("a", 128)}
	bad := []string{"", ".x", "-x", "a:b", "a/b", strings.Repeat("a", 129)}
	for _, n := range good {
		if err := CheckTag(n); err != nil {
			t.Errorf("%q refused: %v", n, err)
		}
	}
	for _, n := range bad {
		if err := CheckTag(n); err == nil {
			t.Errorf("%q accepted", n)
		}
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		in, want string // want: "" for success, else part of the error
	}{
		{`{"Entrypoint":["/bin/sh"],"Cmd":["-c","x"],"Env":["A=b"],"ExposedPorts":{"80/tcp":{}},"Volumes":{"/data":{}},"WorkingDir":"/","User":"1000:100","Labels":{"a":"b"},"StopSignal":"SIGINT"}`, ""},
		{`{"entrypoint":["/bin/sh"]}`, `did you mean "Entrypoint"`},
		{`{"working_dir":"/"}`, ""}, // see below: no suggestion for underscores
		{`{"Cmd":"/bin/sh"}`, "`config`: `Cmd` must be a list"},
		{`{"Env":{"B":"2","A":1}}`, ""},
		{`[]`, "`config` must be an attribute set"},
		{`null`, ""},
	}
	for _, tt := range tests {
		_, err := ParseConfig(json.RawMessage(tt.in))
		switch {
		case tt.in == `{"working_dir":"/"}`:
			if err == nil || !strings.Contains(err.Error(), "`config`: unknown attribute `working_dir`") {
				t.Errorf("%s: %v", tt.in, err)
			}
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.in, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: got %v, want %q", tt.in, err, tt.want)
		}
	}
}

func TestPlatform(t *testing.T) {
	tests := []struct {
		os, arch, wantArch, wantVariant string
		ok                              bool
	}{
		{"linux", "x86_64", "amd64", "", true},
		{"linux", "amd64", "amd64", "", true},
		{"linux", "aarch64", "arm64", "", true},
		{"linux", "armv7l", "arm", "v7", true},
		{"linux", "armv6l", "arm", "v6", true},
		{"", "riscv64", "riscv64", "", true},
		{"linux", "sparc", "", "", false},
		{"windows", "amd64", "", "", false},
		{"beos", "amd64", "", "", false},
	}
	for _, tt := range tests {
		p, err := Platform(tt.os, tt.arch)
		if (err == nil) != tt.ok {
			t.Errorf("%s/%s: %v", tt.os, tt.arch, err)
			continue
		}
		if tt.ok && (p.Architecture != tt.wantArch || p.Variant != tt.wantVariant || p.OS != "linux") {
			t.Errorf("%s/%s: got %+v", tt.os, tt.arch, p)
		}
	}
}

func TestParseMode(t *testing.T) {
	for s, want := range map[string]int64{"0755": 0o755, "755": 0o755, "4755": 0o4755, "0": 0} {
		if m, err := ParseMode(s); err != nil || m != want {
			t.Errorf("%s: %o %v", s, m, err)
		}
	}
	for _, s := range []string{"", "0999", "17777", "-1", "rwx"} {
		if _, err := ParseMode(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
