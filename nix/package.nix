# The ocitools package for nixpkgs users (callPackage it, or use the overlay).
# Static (CGO_ENABLED=0): the binary is a derivation builder and must run in the
# build sandbox with nothing else in it.
{ lib, buildGoModule }:

buildGoModule rec {
  pname = "ocitools";
  version = "0.1.0";

  src = lib.cleanSource ./..;

  # Checked by nix/package_test.go, which recomputes it from go.mod and go.sum.
  vendorHash = "sha256-VS+Szw/GeGtH7ja0xLeO7ScVhKInpkWo33Eu8/5V3to=";

  subPackages = [ "cmd/ocitools" ];

  env.CGO_ENABLED = 0;
  ldflags = [ "-s" "-w" "-X main.version=${version}" ];

  meta = {
    description = "Turn Nix closures into OCI runtime bundles, and run them rootless";
    license = lib.licenses.asl20;
    platforms = lib.platforms.linux;
    mainProgram = "ocitools";
  };
}
