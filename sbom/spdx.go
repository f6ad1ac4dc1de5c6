package sbom

import (
	"bytes"
	"fmt"
	"strings"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// noAssertion is SPDX's "not known" for mandatory fields.
const noAssertion = "NOASSERTION"

// SPDX returns the SBOM as SPDX 2.3 JSON: the same packages and dependencies
// as the CycloneDX document. SPDX requires a creation time: it is the
// result's own fixed time (Input.Created), never the clock.
func SPDX(in *Input) ([]byte, error) {
	if err := in.check(); err != nil {
		return nil, err
	}
	created := in.Created
	if created == "" {
		created = DefaultCreated
	}
	doc := &spdx.Document{
		SPDXVersion:    spdx.Version,
		DataLicense:    spdx.DataLicense,
		SPDXIdentifier: "DOCUMENT",
		DocumentName:   in.Subject.Name,
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: "ocitools"}},
			Created:  created,
		},
	}
	subject := &spdx.Package{
		PackageName:             in.Subject.Name,
		PackageSPDXIdentifier:   subjectRef,
		PackageVersion:          in.Subject.Version,
		PackageDownloadLocation: noAssertion,
		PrimaryPackagePurpose:   strings.ToUpper(string(subjectType(in.Subject.Kind))),
	}
	doc.Packages = append(doc.Packages, subject)
	rel := func(a, b common.ElementID, kind string) {
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", string(a)), RefB: common.MakeDocElementID("", string(b)), Relationship: kind,
		})
	}
	rel("DOCUMENT", subjectRef, "DESCRIBES")
	for _, r := range in.roots() {
		rel(subjectRef, spdxID(r), "DEPENDS_ON")
	}
	if b := in.Base; b != nil {
		c := cdxBase(b)
		doc.Packages = append(doc.Packages, &spdx.Package{
			PackageName: c.Name, PackageSPDXIdentifier: baseRef, PackageVersion: b.Digest,
			PackageDownloadLocation: noAssertion, PrimaryPackagePurpose: "CONTAINER",
			PackageLicenseConcluded: noAssertion, PackageLicenseDeclared: noAssertion, PackageCopyrightText: noAssertion,
		})
		rel(subjectRef, baseRef, "DEPENDS_ON")
	}
	for _, c := range in.components() {
		doc.Packages = append(doc.Packages, spdxPackage(c))
		for _, r := range c.refs {
			rel(spdxID(c.path), spdxID(r), "DEPENDS_ON")
		}
	}
	// The namespace names this content, as the CycloneDX serial number does.
	first, err := encodeSPDX(doc)
	if err != nil {
		return nil, err
	}
	doc.DocumentNamespace = "https://spdx.org/spdxdocs/" + safeName(in.Subject.Name) + "-" + uuid5(first)
	return encodeSPDX(doc)
}

func encodeSPDX(doc *spdx.Document) ([]byte, error) {
	var buf bytes.Buffer
	if err := spdxjson.Write(doc, &buf, spdxjson.Indent("  "), spdxjson.EscapeHTML(false)); err != nil {
		return nil, fmt.Errorf("sbom: encoding SPDX: %w", err)
	}
	return buf.Bytes(), nil
}

func spdxPackage(c component) *spdx.Package {
	p := &spdx.Package{
		PackageName:             c.name,
		PackageSPDXIdentifier:   spdxID(c.path),
		PackageVersion:          c.version,
		PackageDownloadLocation: noAssertion,
		PackageLicenseConcluded: noAssertion,
		PackageLicenseDeclared:  noAssertion,
		PackageCopyrightText:    noAssertion,
		PackageComment: fmt.Sprintf("%s=%s %s=%s %s=%d %s=%s", PropStorePath, c.path, PropNarHash, c.narHash,
			PropNarSize, c.narSize, PropMetadata, metadataSource(c.meta)),
		PackageExternalReferences: []*spdx.PackageExternalReference{{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: purl(c)}},
	}
	if m := c.meta; m != nil {
		p.PackageDescription = m.Description
		p.PackageHomePage = m.Homepage
		if expr := spdxExpression(m.Licenses); expr != "" {
			p.PackageLicenseDeclared = expr
		}
		if cpe := m.Identifiers["cpe"]; cpe != "" {
			p.PackageExternalReferences = append(p.PackageExternalReferences, &spdx.PackageExternalReference{Category: "SECURITY", RefType: "cpe23Type", Locator: cpe})
		}
	}
	return p
}

// spdxExpression joins the licences with AND (nixpkgs' meta.license lists do
// not say whether all apply or one may be chosen: AND claims the most), or ""
// when one of them has no SPDX id.
func spdxExpression(ls []License) string {
	var ids []string
	for _, l := range ls {
		if l.SPDX == "" || !KnownSPDX(l.SPDX) {
			return ""
		}
		ids = append(ids, l.SPDX)
	}
	return strings.Join(ids, " AND ")
}

// spdxID is an element id from a store path's hash part (unique, and only
// letters and digits).
func spdxID(storePath string) common.ElementID {
	base := storePath[strings.LastIndexByte(storePath, '/')+1:]
	hash, _, _ := strings.Cut(base, "-")
	return common.ElementID("nix-" + hash)
}

// safeName keeps the characters a URI path segment may hold as they are.
func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 128 && (r == '-' || r == '.' || r == '_' || ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9')) {
			return r
		}
		return '-'
	}, s)
}
