# The demo bundle `scripts/demo` builds: a closure made on this machine (Debian's
# busybox-static and a text file), no nixpkgs needed.
#
#   nix-build examples/demo.nix --arg ocitools ./dir-with-bin/ocitools --arg busyboxDir ./busybox
{ ocitools, busyboxDir }:
let
  ociTools = import ../nix/oci-tools.nix { inherit ocitools; };
  busybox = builtins.path { path = busyboxDir; name = "busybox"; };
  motd = builtins.toFile "motd" "Hello from a Nix closure running in an OCI container.";
in
ociTools.buildContainer {
  name = "ocitools-demo";
  # Flags and store paths inside strings: nixpkgs' buildContainer refuses this.
  args = [
    "${busybox}/bin/sh" "-c"
    "cat ${motd}; echo; echo \"uid=$(id -u) gid=$(id -g) hostname=$(hostname) PATH=$PATH\"; echo 'the rootfs holds:'; ls /nix/store"
  ];
  readonly = true;
  hostname = "demo";
}
