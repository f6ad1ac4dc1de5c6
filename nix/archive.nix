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
  inherit (import ./lib.nix) builderOf ociDerivation;
  table = import ./table.nix;

  # Arguments are checked against tables.archive of options/known.json
  # (nix/table.nix); the builder checks name and tag by the same shapes.
  archive = attrs:
    let
      error = table.check "archive" attrs;
      image = attrs.image;
      name = attrs.name or image.imageName or null;
      tag = attrs.tag or image.imageTag or null;
      ociOnly = table.arg "archive" attrs "ociOnly";
      base = if name != null then baseNameOf name else "image";
      suffix = if ociOnly then "oci-archive.tar" else "tar";
    in
    if error != null then throw "archive: ${error}"
    else ociDerivation {
      name = "${base}${if tag != null then "-${tag}" else ""}.${suffix}";
      inherit system;
      builder = builderOf ocitools;
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
