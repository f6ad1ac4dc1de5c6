package sbom

import (
	"bytes"
	"crypto/sha1" //nolint:gosec // UUID version 5 is defined with SHA-1.
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	packageurl "github.com/package-url/packageurl-go"
)

// specVersion is the CycloneDX version written, the one whose schema is
// embedded.
const specVersion = cdx.SpecVersion1_6

const (
	schemaURL  = "http://cyclonedx.org/schema/bom-1.6.schema.json"
	subjectRef = "subject"
)

// Property names (the nix: namespace of the CycloneDX property taxonomy).
const (
	PropStorePath = "nix:storePath"
	PropNarHash   = "nix:narHash"
	PropNarSize   = "nix:narSize"
	// PropMetadata says where name and version come from: "evaluation" (the
	// Nix side passed the derivation's attributes) or "none" (parsed from the
	// store path name; licences and the rest are unknown).
	PropMetadata = "nix:metadata"
)

// CycloneDX returns the SBOM as CycloneDX 1.6 JSON.
func CycloneDX(in *Input) ([]byte, error) {
	if err := in.check(); err != nil {
		return nil, err
	}
	comps := in.components()
	bom := &cdx.BOM{
		JSONSchema:  schemaURL,
		BOMFormat:   cdx.BOMFormat,
		SpecVersion: specVersion,
		Version:     1,
		Metadata: &cdx.Metadata{
			Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication, Name: "ocitools"}}},
			Component: &cdx.Component{
				BOMRef:  subjectRef,
				Type:    subjectType(in.Subject.Kind),
				Name:    in.Subject.Name,
				Version: in.Subject.Version,
			},
		},
	}
	components := make([]cdx.Component, 0, len(comps))
	subjectDeps := in.roots()
	if in.Base != nil {
		components = append(components, cdxBase(in.Base))
		subjectDeps = append(subjectDeps, baseRef)
	}
	deps := []cdx.Dependency{{Ref: subjectRef, Dependencies: ptr(subjectDeps)}}
	for _, c := range comps {
		components = append(components, cdxComponent(c))
		d := cdx.Dependency{Ref: c.path}
		if len(c.refs) > 0 {
			d.Dependencies = ptr(c.refs)
		}
		deps = append(deps, d)
	}
	if in.Base != nil {
		deps = append(deps, cdx.Dependency{Ref: baseRef})
	}
	bom.Components = &components
	bom.Dependencies = &deps
	// The serial number names this content: a UUID (version 5) of the
	// document's SHA-256 without it.
	first, err := encode(bom)
	if err != nil {
		return nil, err
	}
	bom.SerialNumber = "urn:uuid:" + uuid5(first)
	return encode(bom)
}

func encode(bom *cdx.BOM) ([]byte, error) {
	var buf bytes.Buffer
	if err := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).SetPretty(true).SetEscapeHTML(false).Encode(bom); err != nil {
		return nil, fmt.Errorf("sbom: encoding CycloneDX: %w", err)
	}
	return buf.Bytes(), nil
}

func subjectType(kind string) cdx.ComponentType {
	if kind == "image" {
		return cdx.ComponentTypeContainer
	}
	return cdx.ComponentTypeApplication
}

// cdxBase is the base image: a container named by its reference (or "base
// image") with its manifest digest as hash and an OCI purl.
func cdxBase(b *Base) cdx.Component {
	name, _, _ := strings.Cut(b.Name, "@")
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name = name[:i]
	}
	c := cdx.Component{BOMRef: baseRef, Type: cdx.ComponentTypeContainer, Name: name, Version: b.Digest}
	if name == "" {
		c.Name = "base image"
	}
	if alg, hex, ok := strings.Cut(b.Digest, ":"); ok && alg == "sha256" {
		c.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: hex}}
		var q packageurl.Qualifiers
		if name != "" {
			q = packageurl.Qualifiers{{Key: "repository_url", Value: name}}
		}
		c.PackageURL = packageurl.NewPackageURL("oci", "", baseName(name), b.Digest, q, "").ToString()
	}
	if b.Digest != "" {
		// A Docker archive base has no manifest digest.
		c.Properties = &[]cdx.Property{{Name: "oci:manifestDigest", Value: b.Digest}}
	}
	return c
}

// baseName is the last path component of a repository (the oci purl's name).
func baseName(repo string) string {
	if repo == "" {
		return "base-image"
	}
	return repo[strings.LastIndexByte(repo, '/')+1:]
}

func cdxComponent(c component) cdx.Component {
	out := cdx.Component{
		BOMRef:     c.path,
		Type:       cdx.ComponentTypeLibrary,
		Name:       c.name,
		Version:    c.version,
		PackageURL: purl(c),
	}
	props := []cdx.Property{
		{Name: PropStorePath, Value: c.path},
		{Name: PropNarHash, Value: c.narHash},
		{Name: PropNarSize, Value: strconv.FormatUint(c.narSize, 10)},
		{Name: PropMetadata, Value: metadataSource(c.meta)},
	}
	if m := c.meta; m != nil {
		out.Description = m.Description
		if m.Homepage != "" {
			out.ExternalReferences = &[]cdx.ExternalReference{{Type: cdx.ERTypeWebsite, URL: m.Homepage}}
		}
		if len(m.Licenses) > 0 {
			ls := make(cdx.Licenses, 0, len(m.Licenses))
			for _, l := range m.Licenses {
				ls = append(ls, cdx.LicenseChoice{License: cdxLicense(l)})
			}
			out.Licenses = &ls
		}
		for _, k := range sortedKeys(m.Identifiers) {
			if k == "cpe" {
				out.CPE = m.Identifiers[k]
				continue
			}
			props = append(props, cdx.Property{Name: "nix:identifiers:" + k, Value: m.Identifiers[k]})
		}
	}
	out.Properties = &props
	return out
}

// cdxLicense is an SPDX id when it is one the schema knows, else a name (a
// licence nixpkgs knows without an SPDX id, or a newer id than the list).
func cdxLicense(l License) *cdx.License {
	out := &cdx.License{URL: l.URL}
	switch {
	case l.SPDX != "" && KnownSPDX(l.SPDX):
		out.ID = l.SPDX
	case l.SPDX != "":
		out.Name = l.SPDX
	default:
		out.Name = l.Name
	}
	if out.ID == "" && out.Name == "" {
		out.Name = "unknown"
	}
	return out
}

func metadataSource(m *Meta) string {
	if m == nil {
		return "none"
	}
	return "evaluation"
}

// purl is pkg:nix/NAME@VERSION with the store path as a qualifier, so that
// two builds of one version are told apart.
func purl(c component) string {
	q := packageurl.Qualifiers{{Key: "storepath", Value: c.path}}
	return packageurl.NewPackageURL("nix", "", c.name, c.version, q, "").ToString()
}

func uuid5(content []byte) string {
	sum := sha256.Sum256(content)
	// The URL namespace of RFC 9562; the name is a URN of the content digest.
	ns := []byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	h := sha1.New() //nolint:gosec // as above
	h.Write(ns)
	h.Write([]byte("urn:ocitools:sbom:sha256:" + hex.EncodeToString(sum[:])))
	u := h.Sum(nil)[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	x := hex.EncodeToString(u)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

func ptr[T any](v T) *T { return &v }

func sortedKeys(m map[string]string) []string {
	return slices.Sorted(maps.Keys(m))
}
