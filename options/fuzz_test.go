package options

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// parseUser accepts exactly "uid" and "uid:gid" with ids below 2^32-1, and
// what it accepts prints back to itself.
func FuzzParseUser(f *testing.F) {
	for _, seed := range []string{"0", "1000", "1000:100", "4294967294:0", "4294967295", "", ":", "a:b", "1:2:3", "+1", "01:02"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := parseUser(s)
		if err != nil {
			return
		}
		if u.UID > maxID || u.GID > maxID {
			t.Fatalf("parseUser(%q) = %+v: id out of range", s, u)
		}
		back := strconv.FormatUint(uint64(u.UID), 10) + ":" + strconv.FormatUint(uint64(u.GID), 10)
		if u2, err := parseUser(back); err != nil || !reflect.DeepEqual(u2, u) {
			t.Fatalf("parseUser(%q) = %+v, but %q gives %+v, %v", s, u, back, u2, err)
		}
		uidPart, _, _ := strings.Cut(s, ":")
		if n, _ := strconv.ParseUint(uidPart, 10, 64); n != uint64(u.UID) {
			t.Fatalf("parseUser(%q) uid %d", s, u.UID)
		}
	})
}

// Sizes (shmSize, size= options) round-trip through formatSize, and mount
// option checks never panic; an accepted option has no comma or NUL.
func FuzzMountOption(f *testing.F) {
	for _, seed := range []string{"size=64m", "size=65536k", "mode=1777", "uid=0", "gid=5", "ro", "size=", "mode=8", "size=18446744073709551615", "x=y,z"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, opt string) {
		err := checkMountOption(opt)
		if err == nil && (opt == "" || strings.ContainsAny(opt, ",\x00")) {
			t.Fatalf("checkMountOption accepted %q", opt)
		}
		_, val, _ := strings.Cut(opt, "=")
		n, err := parseSize(val)
		if err != nil {
			return
		}
		if back, err := parseSize(FormatSize(n)); err != nil || back != n {
			t.Fatalf("size %q = %d, formatted %q reads back %d, %v", val, n, FormatSize(n), back, err)
		}
	})
}
