# The images scripts/bench-push pushes: buildImage of scripts/bench's large
# workload, and a second image that differs from it in one layer only (its root
# store path). Path arguments are store path strings from `nix-store --add`.
{ repo, ocitools, busybox, workload }:

let
  system = builtins.currentSystem;
  sp = builtins.storePath;
  bb = sp busybox;
  paths = map sp workload;

  # The root ties the workload together (its output names every path); the
  # second image's root says something else, so only that layer differs.
  root = v: derivation {
    name = "bench-push-root";
    inherit system;
    builder = "${bb}/bin/sh";
    args = [ "-c" "echo ${v} ${bb} ${toString paths} > $out" ];
  };

  ociTools = import (repo + "/nix/oci-tools.nix") { ocitools = sp ocitools; };
  image = v: ociTools.buildImage {
    name = "bench";
    tag = v;
    config.Entrypoint = [ "${bb}/bin/sh" "-c" "cat ${root v}" ];
  };
in
{
  image = image "v1";
  image2 = image "v2";
}
