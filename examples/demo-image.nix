# The demo as an OCI image: the same closure and command as examples/demo.nix,
# built with buildImage (one layer per store path). `scripts/demo` builds it,
# checks it with `ocitools validate`, unpacks it with `ocitools unpack` and runs
# the bundle with `ocitools run`.
#
#   nix-build examples/demo-image.nix --arg ocitools ./dir-with-bin/ocitools --arg busyboxDir ./busybox
{ ocitools, busyboxDir }:
let
  ociTools = import ../nix/oci-tools.nix { inherit ocitools; };
  # The bundle's derivation keeps its arguments: the image runs the same.
  demo = import ./demo.nix { inherit ocitools busyboxDir; };
in
ociTools.buildImage {
  name = "ocitools-demo";
  tag = "latest";
  config.Entrypoint = demo.container.args;
}
