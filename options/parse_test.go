package options

import (
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Every argument, good and bad: a bad value fails with a message naming the
// argument (and, where there is a list, the valid values).
func TestParseOptions(t *testing.T) {
	tests := []struct {
		name, json string
		wantErr    []string // substrings of the error; nil means success
	}{
		{"minimal", `{"args":["/bin/sh"]}`, nil},
		{"not an object", `[1]`, []string{"options must be a JSON object"}},
		{"null", `null`, []string{"not null"}},
		{"trailing data", `{"args":["x"]} {}`, []string{"nothing after it"}},
		{"unknown field", `{"args":["x"],"readOnly":true}`, []string{"unknown argument `readOnly` (did you mean \"readonly\", \"readonlyPaths\"?)", "valid arguments are", "workingDir"}},
		{"args missing", `{}`, []string{"`args` is required"}},
		{"args empty", `{"args":[]}`, []string{"`args` must not be empty"}},
		{"args not strings", `{"args":[1]}`, []string{"`args`: element 0 must be a string, not an integer"}},
		{"args0 empty", `{"args":[""]}`, []string{"args[0] is empty"}},
		{"readonly not bool", `{"args":["x"],"readonly":"yes"}`, []string{"`readonly` must be a boolean"}},

		{"mount ok", `{"args":["x"],"mounts":{"/data":{"type":"tmpfs","source":"tmpfs","options":["size=16m"]}}}`, nil},
		{"mount relative", `{"args":["x"],"mounts":{"data":{"type":"tmpfs","source":"tmpfs"}}}`, []string{"`mounts`: \"data\" must be an absolute destination"}},
		{"mount no type", `{"args":["x"],"mounts":{"/d":{"source":"tmpfs"}}}`, []string{"`mounts.\"/d\".type` is missing"}},
		{"mount no source", `{"args":["x"],"mounts":{"/d":{"type":"tmpfs"}}}`, []string{"`mounts.\"/d\".source` is missing"}},
		{"mount empty type", `{"args":["x"],"mounts":{"/d":{"type":"","source":"x"}}}`, []string{"`mounts.\"/d\"`.type must be a non-empty string"}},
		{"mount unknown key", `{"args":["x"],"mounts":{"/d":{"type":"tmpfs","source":"x","opts":[]}}}`, []string{`unknown attribute "opts"`}},
		{"mount options not strings", `{"args":["x"],"mounts":{"/d":{"type":"tmpfs","source":"x","options":[1]}}}`, []string{"`mounts.\"/d\".options` must be a list of strings"}},
		{"mount option comma", `{"args":["x"],"mounts":{"/d":{"type":"tmpfs","source":"x","options":["ro,nosuid"]}}}`, []string{"comma"}},
		{"mount option bad size", `{"args":["x"],"mounts":{"/d":{"type":"tmpfs","source":"x","options":["size=lots"]}}}`, []string{`"size=lots"`}},
		{"mount option bad mode", `{"args":["x"],"mounts":{"/d":{"type":"tmpfs","source":"x","options":["mode=999"]}}}`, []string{`"mode=999"`, "octal"}},
		{"bind relative source", `{"args":["x"],"mounts":{"/d":{"type":"bind","source":"rel"}}}`, []string{"absolute host path"}},
		{"mounts not object", `{"args":["x"],"mounts":[]}`, []string{"`mounts` must be an attribute set"}},

		{"os darwin", `{"args":["x"],"os":"darwin"}`, nil},
		{"os windows", `{"args":["x"],"os":"windows"}`, []string{"`os`", `"windows" is not supported`, "POSIX"}},
		{"os unknown", `{"args":["x"],"os":"beos"}`, []string{"`os`", `unknown value "beos"`, `"linux"`}},
		{"arch alias", `{"args":["x"],"arch":"x86_64"}`, nil},
		{"arch goarch", `{"args":["x"],"arch":"arm64"}`, nil},
		{"arch unknown", `{"args":["x"],"arch":"z80"}`, []string{"`arch`", `unknown value "z80"`, `"amd64"`, `"aarch64"`}},

		{"env object", `{"args":["x"],"env":{"A":"1","B":2}}`, nil},
		{"env boolean", `{"args":["x"],"env":{"A":true}}`, []string{"`env.A` must be a string or an integer, not a boolean"}},
		{"env float", `{"args":["x"],"env":{"A":1.5}}`, []string{"`env.A` must be a string or an integer, not a float"}},
		{"shmSize string zero", `{"args":["x"],"shmSize":"0"}`, []string{"`shmSize` must be a positive size", `not "0"`}},
		{"same destination", `{"args":["x"],"mounts":{"/data":{"type":"tmpfs","source":"tmpfs"},"//data/":{"type":"tmpfs","source":"tmpfs"}}}`,
			[]string{"`mounts`: \"//data/\" and \"/data\" are the same destination /data; give it once"}},
		{"env list", `{"args":["x"],"env":["A=1","B="]}`, nil},
		{"env list no equals", `{"args":["x"],"env":["A"]}`, []string{"`env`: element 0 must be of the form NAME=value, not \"A\""}},
		{"env twice", `{"args":["x"],"env":["A=1","A=2"]}`, []string{"A is set twice"}},
		{"env object value list", `{"args":["x"],"env":{"A":[]}}`, []string{"`env.A` must be a string"}},
		{"env number", `{"args":["x"],"env":3}`, []string{"`env` must be a list or an attribute set, not an integer"}},

		{"workingDir ok", `{"args":["x"],"workingDir":"/srv"}`, nil},
		{"workingDir relative", `{"args":["x"],"workingDir":"srv"}`, []string{"`workingDir` must be an absolute path", `"srv"`}},

		{"user uid", `{"args":["x"],"user":"1000"}`, nil},
		{"user uid:gid", `{"args":["x"],"user":"1000:100"}`, nil},
		{"user object", `{"args":["x"],"user":{"uid":1,"gid":2,"additionalGids":[3]}}`, nil},
		{"user name", `{"args":["x"],"user":"nobody"}`, []string{"`user` must be \"uid\" or \"uid:gid\"", `"nobody"`}},
		{"user too big", `{"args":["x"],"user":"4294967295"}`, []string{"`user`"}},
		{"user negative", `{"args":["x"],"user":{"uid":-1,"gid":0}}`, []string{"`user.uid`"}},
		{"user fraction", `{"args":["x"],"user":{"uid":1.5,"gid":0}}`, []string{"`user.uid`"}},
		{"user missing gid", `{"args":["x"],"user":{"uid":1}}`, []string{"`user` needs the attribute gid"}},
		{"user unknown key", `{"args":["x"],"user":{"uid":1,"gid":1,"name":"x"}}`, []string{"`user`", "name"}},

		{"hostname", `{"args":["x"],"hostname":"box"}`, nil},
		{"hostname without uts", `{"args":["x"],"hostname":"box","namespaces":["pid","mount"]}`, []string{"`hostname` needs the uts namespace"}},
		{"terminal", `{"args":["x"],"terminal":true}`, nil},

		{"caps list", `{"args":["x"],"capabilities":["net_admin","CAP_KILL","Chown"]}`, nil},
		{"caps object", `{"args":["x"],"capabilities":{"bounding":["KILL"],"ambient":[]}}`, nil},
		{"caps unknown", `{"args":["x"],"capabilities":["CAP_FLY"]}`, []string{"`capabilities`", `unknown capability "CAP_FLY"`, "CAP_CHOWN"}},
		{"caps unknown set", `{"args":["x"],"capabilities":{"bound":["KILL"]}}`, []string{`unknown attribute "bound"`, "bounding"}},
		{"caps not list", `{"args":["x"],"capabilities":"KILL"}`, []string{"`capabilities` must be a list"}},
		{"noNewPrivileges false", `{"args":["x"],"noNewPrivileges":false}`, nil},

		{"rlimits number", `{"args":["x"],"rlimits":{"NOFILE":4096}}`, nil},
		{"rlimits pair", `{"args":["x"],"rlimits":{"RLIMIT_NPROC":{"soft":10,"hard":20}}}`, nil},
		{"rlimits unknown", `{"args":["x"],"rlimits":{"FILES":1}}`, []string{"`rlimits`", `unknown limit "FILES"`, "RLIMIT_NOFILE"}},
		{"rlimits same twice", `{"args":["x"],"rlimits":{"NOFILE":1,"RLIMIT_NOFILE":2}}`, []string{"name the same limit"}},
		{"rlimits soft above hard", `{"args":["x"],"rlimits":{"NOFILE":{"soft":2,"hard":1}}}`, []string{"soft 2 is above hard 1"}},
		{"rlimits negative", `{"args":["x"],"rlimits":{"NOFILE":-1}}`, []string{"`rlimits.NOFILE`"}},
		{"rlimits missing hard", `{"args":["x"],"rlimits":{"NOFILE":{"soft":1}}}`, []string{"`rlimits.NOFILE`"}},

		{"namespaces", `{"args":["x"],"namespaces":["pid",{"type":"network","path":"/run/netns/x"},"user"]}`, nil},
		{"namespaces unknown", `{"args":["x"],"namespaces":["pidd"]}`, []string{"`namespaces`: element 0: unknown namespace \"pidd\"", "cgroup"}},
		{"namespaces duplicate", `{"args":["x"],"namespaces":["pid",{"type":"pid"}]}`, []string{`"pid" is given twice`}},
		{"namespaces relative path", `{"args":["x"],"namespaces":[{"type":"net","path":"x"}]}`, []string{"`namespaces`"}},
		{"namespaces no type", `{"args":["x"],"namespaces":[{"path":"/x"}]}`, []string{"element 0"}},

		{"maskedPaths", `{"args":["x"],"maskedPaths":["/proc/kcore"]}`, nil},
		{"maskedPaths relative", `{"args":["x"],"maskedPaths":["proc"]}`, []string{"`maskedPaths`", "`maskedPaths`: element 0 must be an absolute path (start with /), not \"proc\""}},
		{"readonlyPaths relative", `{"args":["x"],"readonlyPaths":["proc"]}`, []string{"`readonlyPaths`"}},

		{"shmSize string", `{"args":["x"],"shmSize":"128m"}`, nil},
		{"shmSize bytes", `{"args":["x"],"shmSize":1048576}`, nil},
		{"shmSize bad", `{"args":["x"],"shmSize":"big"}`, []string{"`shmSize`", `"big"`, "64m"}},
		{"shmSize zero", `{"args":["x"],"shmSize":0}`, []string{"`shmSize` must be at least 1, not 0"}},
		{"shmSize fraction", `{"args":["x"],"shmSize":1.5}`, []string{"`shmSize` must be an integer or a string, not a float"}},

		{"annotations", `{"args":["x"],"annotations":{"a.b":"c"}}`, nil},
		{"annotations not strings", `{"args":["x"],"annotations":{"a":1}}`, []string{"`annotations.a` must be a string, not an integer"}},
		{"extraConfig", `{"args":["x"],"extraConfig":{"process":{"oomScoreAdj":5}}}`, nil},
		{"extraConfig list", `{"args":["x"],"extraConfig":[1]}`, []string{"`extraConfig` must be an attribute set"}},

		{"storeMode bind", `{"args":["x"],"storeMode":"bind"}`, nil},
		{"storeMode bad", `{"args":["x"],"storeMode":"link"}`, []string{"`storeMode`", `"link"`, `"copy"`}},
		{"verify", `{"args":["x"],"verify":false}`, nil},
		{"contents relative", `{"args":["x"],"contents":["hello"]}`, []string{"`contents`"}},

		{"linux-only on darwin", `{"args":["x"],"os":"darwin","capabilities":[]}`, []string{"`capabilities` applies only when os = \"linux\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := Parse([]byte(tt.json), "x86_64-linux")
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if o == nil {
					t.Fatal("nil options without an error")
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one containing %q", tt.wantErr)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseUser(t *testing.T) {
	tests := []struct {
		in      string
		want    specs.User
		wantErr bool
	}{
		{"0", specs.User{}, false},
		{"1000", specs.User{UID: 1000}, false},
		{"1000:100", specs.User{UID: 1000, GID: 100}, false},
		{"4294967294:4294967294", specs.User{UID: 4294967294, GID: 4294967294}, false},
		{"4294967295", specs.User{}, true},
		{"", specs.User{}, true},
		{":", specs.User{}, true},
		{"1:", specs.User{}, true},
		{":1", specs.User{}, true},
		{"1:2:3", specs.User{}, true},
		{"+1", specs.User{}, true},
		{"-1", specs.User{}, true},
		{" 1", specs.User{}, true},
		{"root", specs.User{}, true},
		{"99999999999999999999", specs.User{}, true},
	}
	for _, tt := range tests {
		got, err := parseUser(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseUser(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseUser(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want uint64
		err  bool
	}{
		{"1", 1, false}, {"65536k", 64 << 20, false}, {"64m", 64 << 20, false}, {"64M", 64 << 20, false},
		{"1g", 1 << 30, false}, {"1G", 1 << 30, false}, {"0", 0, false},
		{"", 0, true}, {"k", 0, true}, {"1t", 0, true}, {"-1", 0, true}, {"1.5m", 0, true}, {" 1", 0, true},
		{"18446744073709551615", 18446744073709551615, false}, {"18446744073709551616", 0, true},
		{"17179869184g", 0, true},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
	for b, want := range map[uint64]string{1: "1", 1024: "1k", 1536: "1536", 64 << 20: "64m", 3 << 30: "3g", 1<<20 + 1024: "1025k"} {
		if got := FormatSize(b); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", b, got, want)
		}
		if back, err := parseSize(FormatSize(b)); err != nil || back != b {
			t.Errorf("parseSize(FormatSize(%d)) = %d, %v", b, back, err)
		}
	}
}

func TestCheckMountOption(t *testing.T) {
	for opt, ok := range map[string]bool{
		"ro": true, "rbind": true, "size=16m": true, "size=50%": true, "mode=1777": true, "mode=0620": true,
		"uid=1000": true, "gid=5": true, "x-custom=anything": true,
		"": false, "ro,nosuid": false, "size=": false, "mode=8": false, "mode=17777": false, "uid=-1": false,
		"gid=4294967295": false, "a\x00b": false,
	} {
		if err := checkMountOption(opt); (err == nil) != ok {
			t.Errorf("checkMountOption(%q) = %v, want ok %v", opt, err, ok)
		}
	}
}

// Capability and limit names are case-insensitive with an optional prefix.
func TestCanonicalNames(t *testing.T) {
	for in, want := range map[string]string{"net_admin": "CAP_NET_ADMIN", "CAP_KILL": "CAP_KILL", "cap_chown": "CAP_CHOWN", "Sys_Ptrace": "CAP_SYS_PTRACE"} {
		if got, err := canonicalCap(in); err != nil || got != want {
			t.Errorf("canonicalCap(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{"nofile": "RLIMIT_NOFILE", "RLIMIT_NPROC": "RLIMIT_NPROC", "core": "RLIMIT_CORE"} {
		if got, err := canonicalRlimit(in); err != nil || got != want {
			t.Errorf("canonicalRlimit(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// The argument table and the builder know the same argument names: every
// argument of the table that reaches the builder is a field of arguments, and
// every field has a row (name and copyToRoot are nixOnly: copyToRoot is passed
// as contents).
func TestOptionFieldsMatchTable(t *testing.T) {
	typ := reflect.TypeOf(arguments{})
	var fields []string
	for i := 0; i < typ.NumField(); i++ {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		fields = append(fields, name)
	}
	sort.Strings(fields)
	if got := containerTable().builderNames(); !reflect.DeepEqual(got, fields) {
		t.Errorf("table arguments %v\nargument fields %v", got, fields)
	}
}

// Every list, map, shape or table a rule names exists, every pattern
// compiles, every row has a default (or is required) and every default
// decodes through the same parsers as a given value (Parse of the minimal
// arguments applies them all), in every table.
func TestTableIsConsistent(t *testing.T) {
	for fn := range rawTables() {
		for name, a := range TableOf(fn).Rows {
			checkRowConsistent(t, fn+"."+name, a)
		}
	}
	if _, err := Parse([]byte(`{"args":["/bin/sh"]}`), "x86_64-linux"); err != nil {
		t.Fatal(err)
	}
}

func checkRowConsistent(t *testing.T, name string, a Argument) {
	if a.Refuse != "" {
		return
	}
	if len(a.Types) == 0 {
		t.Errorf("%s: no types", name)
	}
	for typ, r := range a.Types {
		if _, ok := docTypeWords[typ]; !ok {
			t.Errorf("%s: unknown type %q", name, typ)
		}
		for _, l := range append(append([]string{}, r.Values...), r.Names, r.KeyNames) {
			if l != "" {
				knownNames(l) // panics when missing
			}
		}
		for _, table := range []string{r.Table, r.ElementTable} {
			if table != "" {
				TableOf(table) // panics when missing
			}
		}
		for _, p := range []string{r.Pattern, r.KeyPattern} {
			if _, err := regexp.Compile(p); p != "" && err != nil {
				t.Errorf("%s: pattern %q: %v", name, p, err)
			}
		}
		if r.Pattern != "" && r.What == "" || r.KeyPattern != "" && r.KeyWhat == "" || (r.Names != "" || r.KeyNames != "") && r.NameWhat == "" || r.Marker != "" && r.MarkerWhat == "" {
			t.Errorf("%s: a rule without the words for its message", name)
		}
	}
	if !a.Required && a.Default == nil && a.DefaultText == "" {
		t.Errorf("%s: no default", name)
	}
}

func TestPlatform(t *testing.T) {
	for _, tt := range []struct{ os, arch, system, wantOS, wantArch, wantErr string }{
		{"", "", "aarch64-linux", "linux", "arm64", ""},
		{"", "x86_64", "", "linux", "amd64", ""},
		{"darwin", "arm64", "x86_64-linux", "darwin", "arm64", ""},
		{"", "armv7l", "", "linux", "arm", ""},
		{"windows", "", "x86_64-linux", "", "", `"windows" is not supported`},
		{"", "z80", "x86_64-linux", "", "", "valid values are the GOARCH values"},
		{"", "", "z80-cpm", "", "", `cannot derive the architecture from the build's system "z80-cpm"`},
	} {
		goos, goarch, err := Platform(tt.os, tt.arch, tt.system)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Platform(%q, %q, %q) error %v, want %q", tt.os, tt.arch, tt.system, err, tt.wantErr)
			}
			continue
		}
		if err != nil || goos != tt.wantOS || goarch != tt.wantArch {
			t.Errorf("Platform(%q, %q, %q) = %s, %s, %v; want %s, %s", tt.os, tt.arch, tt.system, goos, goarch, err, tt.wantOS, tt.wantArch)
		}
	}
}
