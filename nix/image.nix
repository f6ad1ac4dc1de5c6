# buildImage and buildLayer, written with builtins only (no nixpkgs): OCI image
# layouts built from the closure by `ocitools build-image` (docs/buildImage.md).
#
#   inherit (import ./nix/image.nix { inherit ocitools; }) buildImage buildLayer;
#
# nix/oci-tools.nix re-exports both beside buildContainer. `finishImage` is
# applied to every buildImage result (for instance nix/registry.nix's
# withCopyPrograms, which adds programs that copy the image).
{ ocitools, system ? builtins.currentSystem, hostSystem ? system, finishImage ? (image: image) }:

let
  inherit (builtins) filter head isList isString length split substring;
  inherit (import ./lib.nix) closureRoots builderOf;
  table = import ./table.nix;

  builder = builderOf ocitools;

  # Arguments are checked at evaluation against their rows of the argument
  # table (options/known.json's tables.buildImage and tables.buildLayer, by
  # nix/table.nix); the builder applies the same rules (image/options.go).
  checked = fn: attrs: let e = table.check fn attrs; in e == null || throw "${fn}: ${e}";
  arg = table.arg "buildImage";

  str = v: if isString v then v else "${v}";
  pathList = v: map str (if isList v then v else [ v ]);
  # perms' paths are paths in the image, not dependencies.
  permsOf = ps: map (p: p // { path = builtins.unsafeDiscardStringContext (str p.path); }) ps;

  # Default arch: the host system's CPU, in the Nix spelling the builder maps.
  defaultArch = head (split "-" hostSystem);

  buildImage = attrs:
    assert checked "buildImage" attrs;
    assert
      let
        fixed = length (attrs.layers or [ ]) + (if (attrs.copyToRoot or [ ]) == [ ] then 0 else 1);
        max = arg attrs "maxLayers";
      in
      # Equal is fine when the explicit layers hold the whole closure; only
      # the builder can tell.
      fixed <= max || throw "buildImage: `maxLayers` is ${toString max}, but the ${toString (length (attrs.layers or [ ]))} explicit `layers`${if (attrs.copyToRoot or [ ]) == [ ] then "" else " and the copyToRoot layer"} alone make ${toString fixed} layers; raise maxLayers to at least ${toString fixed}, and above it for the other store paths";
    let
      name = attrs.name;
      # The config as given: the builder normalises it (image/options.go).
      config = arg attrs "config";
      copyToRoot = pathList (arg attrs "copyToRoot");
      roots = closureRoots [ config copyToRoot ];
      baseName = let parts = filter isString (split "/" name); in builtins.elemAt parts (length parts - 1);

      imageDrv = tag: derivation {
        name = "${baseName}-oci-image";
        inherit system builder;
        args = [ "build-image" ];
        __structuredAttrs = true;
        exportReferencesGraph.closure = roots;
        outputs = [ "out" ];
        image = {
          inherit name tag config copyToRoot;
          layers = pathList (arg attrs "layers");
          perms = permsOf (arg attrs "perms");
          maxLayers = arg attrs "maxLayers";
          compression = arg attrs "compression";
          created = arg attrs "created";
          os = arg attrs "os";
          arch = attrs.arch or defaultArch;
          annotations = arg attrs "annotations";
        };
      };

      # The default tag is the hash part of the same derivation's output path
      # with an empty tag: it changes whenever any input does, it is known at
      # evaluation (copy programs can use it), and it is never "latest".
      derivedTag = substring 0 32 (baseNameOf (builtins.unsafeDiscardStringContext (imageDrv "").outPath));
      tag = if attrs.tag or null == null then derivedTag else attrs.tag;
      drv = imageDrv tag;
    in
    finishImage (drv // {
      imageName = name;
      imageTag = tag;
      meta = { description = "OCI image layout ${name}:${tag}"; };
    });

  buildLayer = attrs:
    assert checked "buildLayer" attrs;
    derivation
      {
        name = table.arg "buildLayer" attrs "name";
        inherit system builder;
        args = [ "build-layer" ];
        __structuredAttrs = true;
        exportReferencesGraph.closure = closureRoots (pathList attrs.deps);
        outputs = [ "out" ];
        layer = {
          layers = pathList (table.arg "buildLayer" attrs "layers");
          perms = permsOf (table.arg "buildLayer" attrs "perms");
          compression = table.arg "buildLayer" attrs "compression";
        };
      } // { ociLayer = true; };
in
{
  inherit buildImage buildLayer;
}
