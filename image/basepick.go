package image

import (
	"fmt"
	"sort"
	"strings"
)

// basePick is fromImageName and fromImageTag: which image of a fromImage
// that holds several the new image is built on, as dockerTools' pair picks
// one from a Docker archive. The zero value picks nothing: the base must
// then hold one image.
type basePick struct {
	name, tag string
}

func (p basePick) set() bool { return p.name != "" || p.tag != "" }

// String is the pick as the user wrote it, for messages.
func (p basePick) String() string {
	switch {
	case p.name != "" && p.tag != "":
		return fmt.Sprintf("`fromImageName` %q and `fromImageTag` %q (%s:%s)", p.name, p.tag, p.name, p.tag)
	case p.name != "":
		return fmt.Sprintf("`fromImageName` %q", p.name)
	default:
		return fmt.Sprintf("`fromImageTag` %q", p.tag)
	}
}

// splitRef splits an image reference into its name and tag. A Docker
// archive's RepoTags entries are NAME:TAG; an OCI layout's ref names are
// usually a bare tag (skopeo's oci:DIR:TAG, our own layouts), sometimes a
// whole NAME:TAG, so a bare layout ref is a tag and a bare archive one a
// name.
func splitRef(ref string, bareIsTag bool) (name, tag string) {
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		return ref[:i], ref[i+1:]
	}
	if bareIsTag {
		return "", ref
	}
	return ref, ""
}

// matches reports whether ref is the picked image. A ref without a name (a
// layout's bare tag) can only be told by its tag: it matches a pick that
// names a tag, whatever the pick's name.
func (p basePick) matches(ref string, bareIsTag bool) bool {
	name, tag := splitRef(ref, bareIsTag)
	if p.tag != "" && tag != p.tag {
		return false
	}
	if p.name != "" && familiar(name) != familiar(p.name) {
		return name == "" && p.tag != ""
	}
	return true
}

// familiar is a name as Docker shows it: "docker.io/library/debian" and
// "debian" are one image (docker save writes the short form, other tools the
// long one).
func familiar(name string) string {
	name = strings.TrimPrefix(name, "docker.io/")
	if rest, ok := strings.CutPrefix(name, "library/"); ok && !strings.Contains(rest, "/") {
		return rest
	}
	return name
}

// pick returns the index of the one image whose refs match: images[i] is the
// refs of image i. what names the base for messages.
func (p basePick) pick(what string, images [][]string, bareIsTag bool) (int, error) {
	var hits []int
	var all []string
	for i, refs := range images {
		hit := false
		for _, r := range refs {
			all = append(all, r)
			hit = hit || p.matches(r, bareIsTag)
		}
		if hit {
			hits = append(hits, i)
		}
	}
	sort.Strings(all)
	names := "none named"
	if len(all) > 0 {
		names = strings.Join(all, ", ")
	}
	switch len(hits) {
	case 1:
		return hits[0], nil
	case 0:
		return 0, fmt.Errorf("%s picks none of the %d images of %s (%s)", p, len(images), what, names)
	}
	var matched []string
	for _, i := range hits {
		matched = append(matched, strings.Join(images[i], ", "))
	}
	return 0, fmt.Errorf("%s picks %d images of %s (%s): give both `fromImageName` and `fromImageTag`", p, len(hits), what, strings.Join(matched, "; "))
}

// deref is a nullable string argument's value, "" for null.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
