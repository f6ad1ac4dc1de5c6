package layout

import (
	"context"
	"errors"
	"fmt"

	digest "github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// NoPlatformError says that an index (with the indexes it nests) lists no
// image manifest for the platform wanted.
type NoPlatformError struct {
	Where, Want string
	Has         []v1.Descriptor // what Where lists
}

func (e *NoPlatformError) Error() string {
	return fmt.Sprintf("%s has no image for platform %s (it has %s); choose one with --platform", e.Where, e.Want, PlatformsOf(e.Has))
}

// PlatformsOf names the distinct platforms of ds, a few of them and a count
// of the rest: a hostile index may list thousands.
func PlatformsOf(ds []v1.Descriptor) string {
	var out []string
	seen := map[string]bool{}
	for _, d := range ds {
		if p := d.Platform; p != nil {
			s := p.OS + "/" + p.Architecture
			if p.Variant != "" {
				s += "/" + p.Variant
			}
			if !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	if len(out) == 0 {
		return "no platform annotations"
	}
	return few(out)
}

// Select finds the image manifest for a platform below root, an index at
// depth (a manifest is returned as it is): the first manifest the index
// lists whose platform matches, else the first found in its nested indexes,
// in order. Each index is read once; the first error below it (other than
// finding no match) stops the search. want names the platform in messages.
func (w *Walker) Select(ctx context.Context, root v1.Descriptor, depth int, want string, match func(*v1.Platform) bool) (v1.Descriptor, error) {
	tried := map[digest.Digest]bool{}
	var find func(d v1.Descriptor, depth int) (v1.Descriptor, error)
	find = func(d v1.Descriptor, depth int) (v1.Descriptor, error) {
		n, err := w.Read(ctx, d, depth)
		if err != nil {
			return v1.Descriptor{}, err
		}
		for _, c := range n.Index.Manifests {
			if IsManifest(c.MediaType) && match(c.Platform) {
				return c, nil
			}
		}
		for _, c := range n.Index.Manifests {
			if !IsIndex(c.MediaType) || tried[c.Digest] {
				continue
			}
			m, err := find(c, depth+1)
			var none *NoPlatformError
			if !errors.As(err, &none) {
				return m, err
			}
			tried[c.Digest] = true
		}
		return v1.Descriptor{}, &NoPlatformError{Where: "image index " + d.Digest.String(), Want: want, Has: n.Index.Manifests}
	}
	if !IsIndex(root.MediaType) {
		return root, nil
	}
	return find(root, depth)
}
