# Adds `ocitools` and replaces `ociTools.buildContainer` with ours (same arguments,
# same meaning; see docs/buildContainer.md). The rest of nixpkgs' ociTools stays.
final: prev: {
  ocitools = final.callPackage ./package.nix { };

  ociTools = (prev.ociTools or { }) // import ./oci-tools.nix {
    # The builder runs on the build platform; the container's programs are for
    # the host platform.
    ocitools = final.buildPackages.ocitools;
    system = final.stdenv.buildPlatform.system;
    hostSystem = final.stdenv.hostPlatform.system;
  };
}
