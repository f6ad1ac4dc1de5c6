package sbom

import (
	"fmt"
	"testing"

	"github.com/nix-community/go-nix/pkg/nixbase32"

	"github.com/ocitools/ocitools/derivation"
)

// benchInput is a closure of n store paths, each referring to the two before.
func benchInput(b *testing.B, n int) *Input {
	b.Helper()
	items := make([]derivation.PathInfoJSON, n)
	for i := range items {
		h := make([]byte, 20)
		h[0], h[1] = byte(i), byte(i>>8)
		items[i] = derivation.PathInfoJSON{
			Path:    "/nix/store/" + nixbase32.EncodeToString(h) + fmt.Sprintf("-pkg%d-1.%d", i, i),
			NarHash: "sha256:" + nixbase32.EncodeToString(make([]byte, 32)), NarSize: 1000,
		}
		for j := max(0, i-2); j < i; j++ {
			items[i].References = append(items[i].References, items[j].Path)
		}
	}
	c, err := derivation.NewClosure(items)
	if err != nil {
		b.Fatal(err)
	}
	return &Input{Subject: Subject{Kind: "image", Name: "bench"}, Paths: c.Paths, Attr: Attr{Formats: []string{FormatCycloneDX}}}
}

// The cost the builder adds per image (go test -bench CycloneDX ./sbom).
func BenchmarkCycloneDX(b *testing.B) {
	in := benchInput(b, 2000)
	b.ResetTimer()
	for range b.N {
		if _, err := CycloneDX(in); err != nil {
			b.Fatal(err)
		}
	}
}

// The cost push and validate add to check one (go test -bench Validate ./sbom).
func BenchmarkValidate(b *testing.B) {
	data, err := CycloneDX(benchInput(b, 2000))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		if err := Validate(data); err != nil {
			b.Fatal(err)
		}
	}
}
