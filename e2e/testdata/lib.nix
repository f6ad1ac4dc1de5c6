# What end-to-end test expressions see, built from this machine only (no nixpkgs).
{ ocitoolsDir, busyboxDir, repo }:
rec {
  system = builtins.currentSystem;

  ociTools = import (repo + "/nix/oci-tools.nix") { ocitools = ocitoolsDir; };

  # Debian's busybox-static with one symlink per applet: "${busybox}/bin/sh".
  busybox = builtins.path { path = busyboxDir; name = "busybox"; };

  # An executable file in the store holding text.
  writeScript = name: text: derivation {
    inherit name system text;
    builder = "${busybox}/bin/sh";
    args = [ "-c" "cp \"$textPath\" \"$out\" && chmod 0555 \"$out\"" ];
    passAsFile = [ "text" ];
  };

  # A directory in the store made by a shell script (busybox applets on PATH).
  runCommand = name: env: script: derivation ({
    inherit name system script;
    builder = "${busybox}/bin/sh";
    PATH = "${busybox}/bin";
    args = [ "-c" "eval \"$script\"" ];
  } // env);
}
