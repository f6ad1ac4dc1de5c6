# A service that runs as a non-root user (uid 1000), as most services should:
# it writes /tmp and its data directory, reads the CA bundle and has a name in
# /etc/passwd. No runAsRoot, no VM, no fakeroot, and `podman run --user` is
# not needed: users, dirs, files and perms are written into the image's root
# layer with their owners and modes (docs/buildImage.md, "A non-root service").
#
#   nix-build examples/nonroot-image.nix --arg ocitools ./dir-with-bin/ocitools --arg busyboxDir ./busybox
#
# With nixpkgs, pass real packages instead of the stand-ins below:
# `ociTools.caCertificates pkgs.cacert`, `ociTools.usrBinEnv pkgs.coreutils`,
# `ociTools.binSh pkgs.bash`.
{ ocitools, busyboxDir, system ? builtins.currentSystem }:
let
  ociTools = import ../nix/oci-tools.nix { inherit ocitools; };
  busybox = builtins.path { path = busyboxDir; name = "busybox"; };
  sh = "${busybox}/bin/sh";

  # A stand-in for nixpkgs' cacert: the same layout (etc/ssl/certs/ca-bundle.crt).
  cacert = derivation {
    name = "cacert-example";
    inherit system;
    builder = sh;
    args = [ "-c" ''
      ${busybox}/bin/mkdir -p $out/etc/ssl/certs
      echo '-----BEGIN CERTIFICATE----- (example bundle)' > $out/etc/ssl/certs/ca-bundle.crt
    '' ];
  };

  # The service, as a package with bin/: copyToRoot places bin/service at
  # /bin/service as a real file.
  service = derivation {
    name = "service";
    inherit system;
    builder = sh;
    script = ''
      #!/usr/bin/env sh
      set -e
      echo "user=$(id -un) uid=$(id -u) gid=$(id -g) home=$HOME"
      echo "hostname=$(hostname)"
      echo ok > /tmp/probe && echo "tmp=writable"
      if date -u +%s 2>/dev/null > /var/lib/app/state; then echo "data=writable"; else echo "data=not writable"; fi
      head -n 1 /etc/ssl/certs/ca-certificates.crt
      ls -ld /tmp /var/lib/app | while read -r mode _ owner group _; do echo "$mode $owner $group"; done
    '';
    passAsFile = [ "script" ];
    args = [ "-c" ''
      ${busybox}/bin/mkdir -p $out/bin
      ${busybox}/bin/cp "$scriptPath" $out/bin/service
      ${busybox}/bin/chmod 0555 $out/bin/service
    '' ];
  };
in
ociTools.buildImage {
  name = "ocitools-nonroot";
  tag = "latest";
  copyToRoot = [ service ];
  # root and nobody (fakeNss) plus the service's user; its home is created,
  # owned by it.
  users = ociTools.fakeNss ++ [ { name = "app"; uid = 1000; home = "/var/lib/app"; } ];
  # /tmp (1777) is in every image; the data directory belongs to the user.
  dirs = [ { path = "/var/lib/app"; mode = "0750"; uid = "app"; gid = "app"; } ];
  # /etc/ssl/certs/ca-certificates.crt (and friends), /usr/bin/env, /bin/sh.
  files = ociTools.caCertificates cacert ++ ociTools.usrBinEnv busybox ++ ociTools.binSh busybox;
  config = {
    Entrypoint = [ "/bin/service" ];
    User = "app";
    Env = [ "HOME=/var/lib/app" "PATH=/bin:/usr/bin:${busybox}/bin" ];
  };
}
