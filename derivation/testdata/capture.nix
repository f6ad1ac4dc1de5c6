# Produces attrs-real.json: nix-build this (sandboxed) after putting busybox-static
# and a `sh` symlink to it into /tmp/capture/bb; the output is the .attrs.json
# that Nix 2.8 gave the builder.
let
  system = builtins.currentSystem;
  bb = builtins.path { path = /tmp/capture/bb; name = "capture-busybox"; };
  sh = "${bb}/sh";
  dep = derivation {
    name = "capture-dep"; inherit system; builder = sh;
    args = [ "-c" "echo ${bb} > $out" ];
  };
in derivation {
  name = "capture-attrs";
  inherit system;
  builder = sh;
  args = [ "-c" ''out=$(${bb}/busybox sed -n 's/.*"outputs":{"out":"\([^"]*\)".*/\1/p' .attrs.json); ${bb}/busybox cp .attrs.json "$out"'' ];
  __structuredAttrs = true;
  exportReferencesGraph.closure = [ dep ];
  container = { args = [ "${dep}" "-c" "echo hi" ]; readonly = true; };
  outputs = [ "out" ];
}
