# The ocitools package for nixpkgs users (callPackage it, or use the overlay).
# Static (CGO_ENABLED=0): the binary is a derivation builder and must run in the
# build sandbox with nothing else in it.
{ lib, buildGoModule }:

buildGoModule rec {
  pname = "ocitools";
  version = "0.1.0";

  # What the build reads, nothing else: the Go files (every package's, tests
  # included: `go mod vendor` vendors what the tests import too, so leaving them
  # out would change vendorHash), go.mod, go.sum and the files embedded with
  # //go:embed (nix/package_test.go checks this list against the sources).
  # From a flake the tree holds tracked files only; from a checkout, untracked
  # .go files would be picked up too.
  src = lib.fileset.toSource {
    root = ./..;
    fileset = lib.fileset.unions [
      ../go.mod
      ../go.sum
      (lib.fileset.fileFilter (file: file.hasExt "go") ./..)
      ../options/known.json
      ../spec/schema
      ../image/validate/schema
      ../sbom/schema
    ];
  };

  # scripts/vendorhash prints it from the tracked files; nix/package_test.go
  # checks it the same way.
  vendorHash = "sha256-E0G7H6W7/Uxft4wwZ3Zx9J+jKOar66RyLeaqSvjADLU=";

  subPackages = [ "cmd/ocitools" ];

  # cmd/ocitools' tests read fixtures under spec/testdata, outside the source
  # above; the README's test command runs every test.
  doCheck = false;

  env.CGO_ENABLED = 0;
  ldflags = [ "-s" "-w" "-X main.version=${version}" ];

  meta = {
    description = "Turn Nix closures into OCI runtime bundles, and run them rootless";
    license = lib.licenses.asl20;
    platforms = lib.platforms.linux;
    mainProgram = "ocitools";
  };
}
