package sbom

import "strings"

// ParseName splits a store path name (the part after "<hash>-") into a
// package name and a version the way Nix's builtins.parseDrvName does: the
// version starts after the first '-' that is followed by a character that is
// not an ASCII letter (usually a digit). A name without one has no version.
// "hello-2.12.1" is ("hello", "2.12.1"); "xz-5.4.6-bin" is ("xz", "5.4.6-bin");
// "bash-interactive-5.2" is ("bash-interactive", "5.2").
func ParseName(s string) (name, version string) {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '-' && !isASCIILetter(s[i+1]) {
			return s[:i], s[i+1:]
		}
	}
	return s, ""
}

func isASCIILetter(c byte) bool {
	return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}

// storePathName is the name part of an absolute store path.
func storePathName(p string) string {
	base := p[strings.LastIndexByte(p, '/')+1:]
	if i := strings.IndexByte(base, '-'); i >= 0 {
		return base[i+1:]
	}
	return base
}
