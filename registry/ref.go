package registry

import (
	"fmt"
	"net"
	"strings"

	"oras.land/oras-go/v2/registry"
)

// Ref is a parsed registry reference: REGISTRY/REPOSITORY[:TAG][@DIGEST].
type Ref struct {
	Registry   string // host[:port]
	Repository string
	Tag        string // "" when absent
	Digest     string // "" when absent
}

func (r Ref) String() string {
	s := r.Registry + "/" + r.Repository
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// Reference is the tag or digest part oras-go resolves ("" when neither).
func (r Ref) Reference() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}

// ParseRef parses REGISTRY/REPOSITORY[:TAG][@DIGEST], with an optional
// docker:// prefix (skopeo's spelling). The registry part is required: a
// bare "name:tag" would silently mean Docker Hub elsewhere, which is rarely
// what a Nix user pushing a local build wants.
func ParseRef(s string) (Ref, error) {
	const valid = "valid: REGISTRY[:PORT]/REPOSITORY[:TAG][@sha256:HEX], e.g. 127.0.0.1:5000/app:1.0 or docker://ghcr.io/me/app:latest"
	in := s
	s = strings.TrimPrefix(s, "docker://")
	if s == "" {
		return Ref{}, fmt.Errorf("empty image reference (%s)", valid)
	}
	first, _, found := strings.Cut(s, "/")
	if !found || !(strings.ContainsAny(first, ".:") || first == "localhost" || strings.HasPrefix(first, "[")) {
		return Ref{}, fmt.Errorf("reference %q names no registry host (%s)", in, valid)
	}
	var tag, dgst string
	rest := s
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		dgst = rest[i+1:]
		rest = rest[:i]
	}
	// A ':' after the last '/' separates the tag (a port comes before it).
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		tag = rest[i+1:]
		rest = rest[:i]
	}
	host, repo, _ := strings.Cut(rest, "/")
	r := registry.Reference{Registry: host, Repository: repo}
	if err := r.ValidateRegistry(); err != nil {
		return Ref{}, fmt.Errorf("reference %q: registry %q: %v (%s)", in, host, err, valid)
	}
	if err := r.ValidateRepository(); err != nil {
		return Ref{}, fmt.Errorf("reference %q: repository %q must be lowercase letters, digits and separators (._-/) (%s)", in, repo, valid)
	}
	if tag != "" {
		r.Reference = tag
		if err := r.ValidateReferenceAsTag(); err != nil {
			return Ref{}, fmt.Errorf("reference %q: tag %q: at most 128 of [A-Za-z0-9_.-], not starting with . or - (%s)", in, tag, valid)
		}
	}
	if dgst != "" {
		r.Reference = dgst
		if err := r.ValidateReferenceAsDigest(); err != nil {
			return Ref{}, fmt.Errorf("reference %q: digest %q: %v (%s)", in, dgst, err, valid)
		}
	}
	return Ref{Registry: host, Repository: repo, Tag: tag, Digest: dgst}, nil
}

// isLocalhost says whether a registry host is this machine, where plain HTTP
// is allowed as a fallback.
func isLocalhost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
