# One-file forms of an image for `docker load` / `podman load`, with builtins
# only (no nixpkgs): each is a derivation whose builder is the static ocitools
# running `ocitools archive`.
#
#   archives = import ./nix/archive.nix { inherit ocitools; };
#   archives.toArchive image          # docker-archive + OCI layout in one tar
#   archives.toOCIArchive image       # OCI layout only (podman load, skopeo; not docker)
#   archives.archive { image; name ? ...; tag ? ...; ociOnly ? false; }
#   archives.withArchive image        # image // { archive; ociArchive; }
#
# `image` is an OCI image layout in the store (buildImage's result). Its
# `imageName` and `imageTag` attributes, when present, name the loaded image;
# a null tag means the tag index.json carries.
{ ocitools, system ? builtins.currentSystem }:

let
  inherit (builtins) isAttrs isPath isString isBool typeOf throw;

  ocitoolsDir =
    if isPath ocitools then builtins.path { path = ocitools; name = "ocitools"; }
    else if isAttrs ocitools || isString ocitools then ocitools
    else throw "archive: `ocitools` must be the ocitools package or a path to a directory holding bin/ocitools, not a ${typeOf ocitools}";

  fail = msg: throw "archive: ${msg}";

  archive =
    { image
    , name ? image.imageName or null
    , tag ? image.imageTag or null
    , ociOnly ? false
    }:
    let
      checked =
        if !(isAttrs image || isPath image || isString image) then fail "`image` must be an image layout (buildImage's result), not a ${typeOf image}"
        else if !(name == null || isString name) then fail "`name` must be a string or null, not a ${typeOf name}"
        else if !(tag == null || isString tag) then fail "`tag` must be a string or null, not a ${typeOf tag}"
        else if !(isBool ociOnly) then fail "`ociOnly` must be a boolean, not a ${typeOf ociOnly}"
        else true;
      base = if name != null then baseNameOf name else "image";
      suffix = if ociOnly then "oci-archive.tar" else "tar";
    in
    assert checked;
    derivation {
      name = "${base}${if tag != null then "-${tag}" else ""}.${suffix}";
      inherit system;
      builder = "${ocitoolsDir}/bin/ocitools";
      args = [ "archive" ]
        ++ (if name != null then [ "--name" name ] else [ ])
        ++ (if tag != null then [ "--tag" tag ] else [ ])
        ++ (if ociOnly then [ "--oci-only" ] else [ ])
        ++ [ "${image}" (builtins.placeholder "out") ];
    };

  toArchive = image: archive { inherit image; };
  toOCIArchive = image: archive { inherit image; ociOnly = true; };
in
{
  inherit archive toArchive toOCIArchive;
  # What the coordinator wires into buildImage's result: `nix-build -A
  # image.archive` gives the file for `docker load -i`.
  withArchive = image: image // {
    archive = toArchive image;
    ociArchive = toOCIArchive image;
  };
}
