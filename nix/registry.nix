# Registries, written with builtins only (no nixpkgs): `nix run` programs that
# copy an image somewhere, and multi-arch image indexes (docs/registry.md).
#
#   inherit (import ./nix/registry.nix { inherit ocitools; }) withCopyPrograms buildIndex;
#
# `ocitools` is the ocitools package or a path to a directory holding
# bin/ocitools (a static build), as for nix/oci-tools.nix.
{ ocitools, system ? builtins.currentSystem }:

let
  inherit (builtins) all filter isAttrs isList isPath isString length match typeOf;

  ocitoolsDir =
    if isPath ocitools then builtins.path { path = ocitools; name = "ocitools"; }
    else if isAttrs ocitools || isString ocitools then ocitools
    else throw "ociTools: `ocitools` must be the ocitools package or a path to a directory holding bin/ocitools, not a ${typeOf ocitools}";
  builder = "${ocitoolsDir}/bin/ocitools";

  describe = v:
    if isString v then "the string \"${v}\""
    else if isList v then "a list"
    else if isAttrs v then (if v ? outPath then "a derivation" else "an attribute set")
    else "a ${typeOf v}";

  isImage = v: isAttrs v && v ? outPath;

  # One copy program: bin/ACTION is a link to the static ocitools, which, run
  # under that name, reads share/ocitools/copy.json (the image's store path,
  # name and tag) and does ACTION. No shell, no nixpkgs.
  copyProgram = image: action:
    let
      tag = image.imageTag or null;
      drv = derivation {
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

  fail = msg: throw "buildIndex: ${msg}";
  validName = n: isString n && match "[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*" (let m = match "([^/]*[.:][^/]*/|localhost/)?(.*)" n; in if m == null then n else builtins.elemAt m 1) != null;
  validTag = t: isString t && match "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}" t != null;

  # buildIndex { name, tag, images }: one multi-arch OCI image layout whose
  # index lists each image (a buildImage result, one per platform) with the
  # platform its config names. Blobs are links to the images' files, so the
  # images are in the result's closure and nothing is copied.
  buildIndex = attrs:
    let
      known = [ "name" "tag" "images" ];
      unknown = filter (n: !(builtins.elem n known)) (builtins.attrNames attrs);
      name = attrs.name or (fail "`name` is required: the index's repository name, such as name = \"registry.example/app\"");
      tag = attrs.tag or (fail "`tag` is required, such as tag = \"1.0\"");
      images = attrs.images or (fail "`images` is required: a list of buildImage results, one per arch");
      baseName = let parts = filter isString (builtins.split "/" name); in builtins.elemAt parts (length parts - 1);
      drv = derivation {
        name = "${baseName}-oci-index";
        inherit system builder;
        args = [ "build-index" "--out" (builtins.placeholder "out") "--tag" tag ] ++ map (i: "${i}") images;
      };
    in
    if !(isAttrs attrs) then fail "takes an attribute set { name, tag, images }, not ${describe attrs}"
    else if unknown != [ ] then fail "unknown argument ${builtins.concatStringsSep ", " (map (n: "`${n}`") unknown)}; valid arguments are `name`, `tag`, `images`"
    else if !(validName name) then fail "`name` must be a repository name (lowercase letters, digits, separators ._-/, optionally after a registry host), not ${describe name}"
    else if !(validTag tag) then fail "`tag` must be 1-128 of [A-Za-z0-9_.-], not starting with . or -, not ${describe tag}"
    else if !(isList images) || images == [ ] then fail "`images` must be a non-empty list of buildImage results, not ${describe images}"
    else if !(all isImage images) then fail "every element of `images` must be a buildImage result (a derivation)"
    else withCopyPrograms (drv // {
      imageName = name;
      imageTag = tag;
      meta = { description = "OCI image index ${name}:${tag}"; };
    });
in
{
  inherit withCopyPrograms buildIndex;
}
