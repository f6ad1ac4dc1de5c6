# One benchmark build of scripts/bench-image: buildImage of a workload closure.
# Every path argument is a store path string (from `nix-store --add`), turned
# into a dependency with builtins.storePath, so evaluation hashes nothing.
#
# app (a version string) adds a small application path over the workload, the
# entrypoint's file, for the rebuild rows: v1 then v2 is "only the app
# changed". mode: "stored" (buildImage), "stream" (streamImage) or "groups"
# (the workload in one `layering` group: a buildLayer Nix reuses) or
# "auto-derivations" (layering = "auto-derivations": planned groups, one layer
# derivation each) or "stream-none" (streamImage with uncompressed layers:
# nix2container's default form, whose build only hashes).
{ repo, ocitools, busybox, workload, compression, app ? null, mode ? "stored" }:

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

  appPath = derivation {
    name = "bench-app";
    inherit system;
    builder = "${bb}/bin/sh";
    args = [ "-c" "echo app ${app} ${root} > $out" ];
  };
  top = if app == null then root else appPath;
  modeArgs = {
    stored = { };
    stream = { stream = true; };
    groups = { layering = [ ([ bb ] ++ paths) ]; };
    auto-derivations = { layering = "auto-derivations"; };
    stream-none = { stream = true; compression = "none"; };
  }.${mode};
in
{
  inherit root;
  image = ociTools.buildImage ({
    name = "bench";
    tag = compression;
    inherit compression;
    config.Entrypoint = [ "${bb}/bin/sh" "-c" "cat ${top}" ];
  } // modeArgs);
}
