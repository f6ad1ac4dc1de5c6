# One benchmark build of scripts/bench-image: buildImage of a workload closure.
# Every path argument is a store path string (from `nix-store --add`), turned
# into a dependency with builtins.storePath, so evaluation hashes nothing.
{ repo, ocitools, busybox, workload, compression }:

let
  system = builtins.currentSystem;
  sp = builtins.storePath;
  bb = sp busybox;
  paths = map sp workload;

  # The root that ties the workload together (as in bench.nix): its output
  # names every path, so its closure is the whole workload.
  root = derivation {
    name = "bench-workload-root";
    inherit system;
    builder = "${bb}/bin/sh";
    args = [ "-c" "echo ${bb} ${toString paths} > $out" ];
  };

  ociTools = import (repo + "/nix/oci-tools.nix") { ocitools = sp ocitools; };
in
{
  inherit root;
  image = ociTools.buildImage {
    name = "bench";
    tag = compression;
    inherit compression;
    config.Entrypoint = [ "${bb}/bin/sh" "-c" "cat ${root}" ];
  };
}
