# ociTools, written with builtins only: it evaluates and builds without nixpkgs.
#
#   ociTools = import ./nix/oci-tools.nix { inherit ocitools; };
#
# `ocitools` is the ocitools package (a derivation) or a path to a directory that
# holds bin/ocitools (a static build). `system` is the Nix system the builder runs
# on; `hostSystem` the one the container's programs are for (the default arch).
{ ocitools, system ? builtins.currentSystem, hostSystem ? system }:

let
  inherit (builtins) head match split;
  inherit (import ./lib.nix) closureRoots builderOf ociDerivation sbomAttr sbomMetadata;
  table = import ./table.nix;

  builder = builderOf ocitools;
  fail = msg: throw "buildContainer: ${msg}";

  # The checks at evaluation come from the argument table (options/known.json's
  # `arguments`, applied by nix/table.nix): names, required arguments, types,
  # enumerations and string shapes. The builder applies the same rules with the
  # same messages, then checks everything deeply (spec/). The result is the
  # message buildContainer throws (after "buildContainer: "), or null.
  checkArguments = table.check "buildContainer";

  buildContainer = attrs:
    let
      error = checkArguments attrs;
      # users and groups: the table checks their shape, buildImage's checks
      # the rest (uid 0 is root, distinct uids, homes).
      accountError = images.accountsError attrs;

      args = map (a: "${a}") attrs.args;
      contents = (attrs.contents or [ ]) ++ (attrs.copyToRoot or [ ]);
      contentPaths = map (c: "${c}") contents;

      # Default arch: the host system's CPU, in the Nix spelling the builder maps.
      defaultArch = head (split "-" hostSystem);
      name = attrs.name or (
        let base = baseNameOf (builtins.unsafeDiscardStringContext (head args));
            clean = match "[.]*([0-9a-zA-Z+_?=-][0-9a-zA-Z+._?=-]*).*" base;
        in if clean == null then "oci-bundle" else "${head clean}-oci-bundle");

      passed = removeAttrs attrs [ "name" "contents" "copyToRoot" "sbom" ];
      container = passed // {
        inherit args;
        os = table.arg "buildContainer" attrs "os";
        arch = attrs.arch or defaultArch;
      } // (if contents == [ ] then { } else { contents = contentPaths; });

      roots = closureRoots container;
      sbomArg = table.arg "buildContainer" attrs "sbom";
      drv = ociDerivation {
        inherit name system builder container;
        args = [ "build" ];
        __structuredAttrs = true;
        # Every store path the configuration mentions is in the rootfs: args,
        # contents, and the strings of env, mounts, annotations, extraConfig, ...
        exportReferencesGraph.closure = roots;
        # The SBOM beside config.json, with what evaluation knows about the
        # derivations among the arguments (docs/sbom.md).
        sbom = sbomAttr sbomArg roots (sbomMetadata attrs);
        outputs = [ "out" ];
      };
      sbomFiles = { cyclonedx = "sbom.cdx.json"; spdx = "sbom.spdx.json"; };
      sbomFormats = if sbomArg == true then [ "cyclonedx" ] else if sbomArg == false then [ ] else sbomArg;
    in
    if error != null then fail error
    else if accountError != null then fail accountError
    else
      drv // (if sbomFormats == [ ] then { } else { sbom = "${drv}/${sbomFiles.${head sbomFormats}}"; }) // {
        meta = { description = "OCI runtime bundle running ${builtins.unsafeDiscardStringContext (head args)}"; mainProgram = name; };
      };
  registry = import ./registry.nix { inherit ocitools system; };
  archives = import ./archive.nix { inherit ocitools system; };
  pulls = import ./pull.nix { inherit ocitools system hostSystem; };
  images = import ./image.nix {
    inherit ocitools system hostSystem;
    finishImage = image: archives.withArchive (registry.withCopyPrograms image);
  };
in
{
  inherit buildContainer checkArguments;
  # OCI images (docs/buildImage.md): every buildImage result also carries its
  # one-file forms (archive, ociArchive: nix/archive.nix) and `nix run`
  # programs that copy it (copyToRegistry, copyTo, copyToDockerDaemon,
  # copyToPodman: nix/registry.nix).
  inherit (images) buildImage buildLayer streamImage;
  # Root layer helpers: caCertificates, usrBinEnv, binSh, fakeNss.
  inherit (images.helpers) caCertificates usrBinEnv binSh fakeNss;
  # Multi-arch image indexes (docs/registry.md).
  inherit (registry) buildIndex withCopyPrograms;
  inherit (archives) toArchive toOCIArchive;
  # Base images from a registry, for buildImage's fromImage (docs/registry.md).
  inherit (pulls) pullImage pullImageFromLock;
}
