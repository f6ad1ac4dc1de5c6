# Registries, written with builtins only (no nixpkgs): `nix run` programs that
# copy an image somewhere, and multi-arch image indexes (docs/registry.md).
#
#   inherit (import ./nix/registry.nix { inherit ocitools; }) withCopyPrograms buildIndex;
#
# `ocitools` is the ocitools package or a path to a directory holding
# bin/ocitools (a static build), as for nix/oci-tools.nix.
{ ocitools, system ? builtins.currentSystem }:

let
  inherit (builtins) filter isAttrs isString length;
  inherit (import ./lib.nix) builderOf ociDerivation describe repoBaseName;
  table = import ./table.nix;

  builder = builderOf ocitools;

  isImage = v: isAttrs v && v ? outPath;

  # One copy program: bin/ACTION is a link to the static ocitools, which, run
  # under that name, reads share/ocitools/copy.json (the image's store path,
  # name and tag) and does ACTION. No shell, no nixpkgs.
  copyProgram = image: action:
    let
      tag = image.imageTag or null;
      drv = ociDerivation {
        name = action;
        inherit system builder;
        args = [ "copy-program" "--out" (builtins.placeholder "out") "--action" action
          "--image" "${image}" "--name" (image.imageName or "")
          "--tag" (if tag == null then "" else tag) ];
      };
    in
    drv // { meta = { description = "${action} for the OCI image ${image.imageName or image.name or ""}"; mainProgram = action; }; };

  # image // { copyToRegistry, copyTo, copyToDockerDaemon, copyToPodman }:
  #   nix run .#image.copyToRegistry            push to the image's name:tag
  #   nix run .#image.copyTo -- docker://r/a:t  push (or oci:DIR, docker-daemon:N:T)
  #   nix run .#image.copyToDockerDaemon        load into docker
  #   nix run .#image.copyToPodman              load into podman
  withCopyPrograms = image:
    if !(isImage image) then throw "withCopyPrograms: takes a buildImage or buildIndex result, not ${describe image}"
    else image // {
      copyToRegistry = copyProgram image "copyToRegistry";
      copyTo = copyProgram image "copyTo";
      copyToDockerDaemon = copyProgram image "copyToDockerDaemon";
      copyToPodman = copyProgram image "copyToPodman";
    };

  # buildIndex { name, tag, images }: one multi-arch OCI image layout whose
  # index lists each image (a buildImage result, one per platform) with the
  # platform its config names. Blobs are links to the images' files, so the
  # images are in the result's closure and nothing is copied. Arguments are
  # checked against tables.buildIndex of options/known.json (nix/table.nix).
  buildIndex = attrs:
    let
      error = table.check "buildIndex" attrs;
      inherit (attrs) name tag images;
      drv = ociDerivation {
        name = "${repoBaseName name}-oci-index";
        inherit system builder;
        args = [ "build-index" "--out" (builtins.placeholder "out") "--tag" tag ] ++ map (i: "${i}") images;
      };
    in
    if error != null then throw "buildIndex: ${error}"
    else withCopyPrograms (drv // {
      imageName = name;
      imageTag = tag;
      meta = { description = "OCI image index ${name}:${tag}"; };
    });
in
{
  inherit withCopyPrograms buildIndex;
}
