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
  known = builtins.fromJSON (builtins.readFile ../options/known.json);

  inherit (builtins)
    all attrNames concatStringsSep elem filter head isAttrs isBool
    isInt isList isPath isString length listToAttrs map match split substring
    stringLength throw typeOf;

  ocitoolsDir =
    if isPath ocitools then builtins.path { path = ocitools; name = "ocitools"; }
    else if isAttrs ocitools || isString ocitools then ocitools
    else throw "ociTools: `ocitools` must be the ocitools package or a path to a directory holding bin/ocitools, not a ${typeOf ocitools}";
  builder = "${ocitoolsDir}/bin/ocitools";

  showList = xs: concatStringsSep ", " xs;
  quoteList = xs: showList (map (x: "\"${x}\"") xs);
  describe = v:
    if isString v then "the string \"${v}\""
    else if isList v then "a list"
    else if isAttrs v then (if v ? outPath then "a derivation" else "an attribute set")
    else if isInt v then "the integer ${toString v}"
    else "a ${typeOf v}";

  lowerChars = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  upperChars = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
  toLower = builtins.replaceStrings upperChars lowerChars;

  # Every store path mentioned anywhere in a value (strings, derivations,
  # paths, nested lists and attribute sets), as exportReferencesGraph wants
  # them: the closure roots (nix/lib.nix, shared with buildContainer).
  inherit (import ./lib.nix) closureRoots sbomAttr sbomMetadata checkSbom;

  # The SBOM files a result holds, and the attributes pointing at them.
  sbomFiles = { cyclonedx = "sbom.cdx.json"; spdx = "sbom.spdx.json"; };
  withSbom = drv: arg:
    let formats = if arg == true then [ "cyclonedx" ] else if arg == false then [ ] else arg; in
    if formats == [ ] then { } else
    { sbom = "${drv}/${sbomFiles.${head formats}}"; }
    // (if elem "spdx" formats then { sbomSPDX = "${drv}/${sbomFiles.spdx}"; } else { });

  isStringLike = v: isString v || isPath v || (isAttrs v && v ? outPath);
  str = v: if isString v then v else "${v}";

  # The distribution spec's grammar (POSIX regular expressions for builtins.match).
  nameComponent = "[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*";
  hostPart = "([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*(:[0-9]+)?/)?";
  checkName = v:
    if !(isString v) then "must be a string (a repository name such as \"hello\" or \"registry.example/team/hello\"), not ${describe v}"
    else if stringLength v > 255 || match "${hostPart}${nameComponent}(/${nameComponent})*" v == null
    then "\"${v}\" is not a valid image name: path components of lower-case letters and digits separated by '.', '_', '__' or '-', joined by '/', optionally after a registry host (\"registry.example:5000/team/app\")"
    else null;
  checkTag = v:
    if v == null then null
    else if !(isString v) then "must be a string or null (derived from the inputs), not ${describe v}"
    else if match "[A-Za-z0-9_][A-Za-z0-9._-]{0,127}" v == null
    then "\"${v}\" is not a valid tag: 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
    else null;

  maxLayersLimit = 125;
  checkMaxLayers = v:
    if !(isInt v) then "must be an integer between 1 and ${toString maxLayersLimit}, not ${describe v}"
    else if v < 1 || v > maxLayersLimit then "must be between 1 and ${toString maxLayersLimit} (overlayfs stacks at most about 127 layers), not ${toString v}"
    else null;

  compressions = [ "gzip" "zstd" "none" ];
  checkCompression = v:
    if isString v && elem v compressions then null
    else "must be one of ${quoteList compressions} (gzip is read by every client; zstd needs image-spec 1.1 readers such as podman), not ${describe v}";

  checkCreated = v:
    if isString v && match "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})" v != null then null
    else "must be an RFC 3339 time such as \"1970-01-01T00:00:01Z\" (a fixed time: the image must not depend on when it was built), not ${describe v}";

  checkOS = v:
    if !(isString v) then "must be a string (a GOOS value such as \"linux\"), not ${describe v}"
    else if known.unsupportedOS ? ${v} then "\"${v}\" is not supported: ${known.unsupportedOS.${v}}"
    else if !(elem v known.os) then "unknown value \"${v}\"; valid values are the GOOS values ${quoteList known.os}"
    else null;
  checkArch = v:
    if !(isString v) then "must be a string (a GOARCH value such as \"amd64\"), not ${describe v}"
    else if elem v known.arch || known.archAliases ? ${v} then null
    else "unknown value \"${v}\"; valid values are the GOARCH values ${quoteList known.arch}, or the Nix spellings ${quoteList (attrNames known.archAliases)}";

  isStringAttrs = v: isAttrs v && all (n: isString v.${n}) (attrNames v);
  checkAnnotations = v: if isStringAttrs v && !(v ? outPath) then null else "must be an attribute set of strings, not ${describe v}";

  permKeys = [ "path" "mode" "uid" "gid" "recursive" ];
  checkPerm = i: p:
    let where = "element ${toString i}"; in
    if !(isAttrs p) then "${where} must be { path, mode ? \"0755\", uid ? 0, gid ? 0, recursive ? false }, not ${describe p}"
    else
      let extra = filter (n: !(elem n permKeys)) (attrNames p); in
      if extra != [ ] then "${where}: unknown attribute ${quoteList extra}; valid attributes are ${showList permKeys}"
      else if !(p ? path) || !(isStringLike p.path) then "${where}: `path` (an absolute path in the image) is required"
      else if substring 0 1 (str p.path) != "/" then "${where}: path \"${str p.path}\" must be absolute"
      else if p ? mode && !(isString p.mode && match "0?[0-7]{3,4}" p.mode != null)
      then "${where} (${str p.path}): mode must be an octal string such as \"0755\" (Nix has no octal numbers: 0755 is seven hundred and fifty-five), not ${describe p.mode}"
      else if p ? uid && !(isInt p.uid && p.uid >= 0) then "${where} (${str p.path}): uid must be a non-negative integer"
      else if p ? gid && !(isInt p.gid && p.gid >= 0) then "${where} (${str p.path}): gid must be a non-negative integer"
      else if p ? recursive && !(isBool p.recursive) then "${where} (${str p.path}): recursive must be a boolean"
      else null;
  checkPerms = v:
    if !(isList v) then "must be a list of { path, mode ?, uid ?, gid ?, recursive ? }, not ${describe v}"
    else firstError (builtins.genList (i: checkPerm i (builtins.elemAt v i)) (length v));

  firstError = errs: let e = filter (x: x != null) errs; in if e == [ ] then null else head e;

  checkPackages = v:
    let xs = if isList v then v else [ v ]; in
    if all isStringLike xs then null
    else "must be a list of packages (derivations or store paths), not ${describe v}";

  isLayer = l: isAttrs l && (l.ociLayer or false) == true;
  checkLayers = v:
    if !(isList v) then "must be a list of buildLayer results, not ${describe v}"
    else
      let
        bad = filter (i: !(isLayer (builtins.elemAt v i))) (builtins.genList (i: i) (length v));
        paths = map (l: builtins.unsafeDiscardStringContext l.outPath) v;
        dups = filter (i: elem (builtins.elemAt paths i) (builtins.genList (j: builtins.elemAt paths j) i)) (builtins.genList (i: i) (length v));
    in
      if bad != [ ] then "element ${toString (head bad)} is ${describe (builtins.elemAt v (head bad))}, not a layer: use ociTools.buildLayer { deps = [ ... ]; }"
      else if dups != [ ] then "element ${toString (head dups)} is the same layer as an earlier one: list each layer once"
      else null;

  # The image config, with the names dockerTools and nix2container users write.
  configFields = {
    User = v: if isString v then null else "must be a string (\"uid[:gid]\" or a name), not ${describe v}";
    Entrypoint = checkStringList;
    Cmd = checkStringList;
    Env = v:
      if isList v && all (e: isString e && match "[^=]+=.*" e != null) v then null
      else if isAttrs v && !(v ? outPath) && all (n: isStringLike v.${n} || isInt v.${n}) (attrNames v) then null
      else "must be a list of \"NAME=value\" strings or an attribute set of strings, not ${describe v}";
    WorkingDir = v: if isString v && substring 0 1 v == "/" then null else "must be an absolute path, not ${describe v}";
    ExposedPorts = checkSet "\"80/tcp\"" (p: match "[0-9]+(-[0-9]+)?(/(tcp|udp|sctp))?" p != null);
    Volumes = checkSet "\"/data\"" (p: substring 0 1 p == "/");
    Labels = v: if isStringAttrs v then null else "must be an attribute set of strings, not ${describe v}";
    StopSignal = v: if isString v && v != "" then null else "must be a signal name such as \"SIGTERM\", not ${describe v}";
    ArgsEscaped = v: if isBool v then null else "must be a boolean (it only matters for Windows images), not ${describe v}";
  };
  checkStringList = v:
    if isList v && all isStringLike v then null
    else "must be a list of strings, not ${describe v}";
  checkSet = example: ok: v:
    let keys = if isList v then v else if isAttrs v then attrNames v else null; in
    if keys == null || !(all isString keys) then "must be a list such as [ ${example} ] or an attribute set { ${example} = { }; }, not ${describe v}"
    else let bad = filter (k: !(ok k)) keys; in
      if bad == [ ] then null else "\"${head bad}\" is not valid (for example ${example})";
  configAliases = { workdir = "WorkingDir"; cwd = "WorkingDir"; ports = "ExposedPorts"; expose = "ExposedPorts"; entry = "Entrypoint"; command = "Cmd"; environment = "Env"; stopsignal = "StopSignal"; };
  suggestConfig = n:
    let
      l = toLower n;
      same = filter (f: toLower f == l || toLower f == builtins.replaceStrings [ "_" "-" ] [ "" "" ] l) (attrNames configFields);
    in
    if same != [ ] then " (did you mean \"${head same}\"?)"
    else if configAliases ? ${l} then " (did you mean \"${configAliases.${l}}\"?)"
    else "";
  checkConfig = v:
    if !(isAttrs v) || v ? outPath then "must be an attribute set of image config fields, not ${describe v}"
    else
      let unknown = filter (n: !(configFields ? ${n})) (attrNames v); in
      if unknown != [ ] then "unknown field \"${head unknown}\"${suggestConfig (head unknown)}; valid fields are ${showList (attrNames configFields)}"
      else firstError (map (n: let e = configFields.${n} v.${n}; in if e == null then null else "${n} ${e}") (attrNames v));

  # Lists become what the image-spec types hold.
  toSet = v: if isList v then listToAttrs (map (k: { name = k; value = { }; }) v) else v;
  normConfig = c:
    (removeAttrs c [ "Entrypoint" "Cmd" "Env" "ExposedPorts" "Volumes" ])
    // (if c ? Entrypoint then { Entrypoint = map str c.Entrypoint; } else { })
    // (if c ? Cmd then { Cmd = map str c.Cmd; } else { })
    // (if c ? Env then { Env = if isList c.Env then c.Env else map (n: "${n}=${toString c.Env.${n}}") (attrNames c.Env); } else { })
    // (if c ? ExposedPorts then { ExposedPorts = toSet c.ExposedPorts; } else { })
    // (if c ? Volumes then { Volumes = toSet c.Volumes; } else { });

  imageArguments = {
    name = checkName;
    tag = checkTag;
    config = checkConfig;
    copyToRoot = checkPackages;
    layers = checkLayers;
    maxLayers = checkMaxLayers;
    compression = checkCompression;
    created = checkCreated;
    os = checkOS;
    arch = checkArch;
    perms = checkPerms;
    annotations = checkAnnotations;
    sbom = checkSbom;
  };

  suggestArg = args: n:
    let near = filter (a: toLower a == toLower n || (stringLength n >= 3 && substring 0 3 (toLower a) == substring 0 3 (toLower n))) (attrNames args);
    in if near == [ ] then "" else " (did you mean ${quoteList near}?)";

  checkArguments = fn: args: attrs:
    let
      unknown = filter (n: !(args ? ${n})) (attrNames attrs);
      errors = filter (e: e != null)
        (map (n: let e = args.${n} attrs.${n}; in if e == null then null else "`${n}` ${e}") (attrNames attrs));
    in
    if !(isAttrs attrs) then throw "${fn}: takes an attribute set of arguments, not ${describe attrs}"
    else if unknown != [ ] then throw "${fn}: unknown argument ${showList (map (n: "`${n}`${suggestArg args n}") unknown)}; valid arguments are ${showList (attrNames args)}"
    else if errors != [ ] then throw "${fn}: ${head errors}"
    else true;

  defaultArch = head (split "-" hostSystem);

  # The default maxLayers: see docs/buildImage.md ("maxLayers").
  defaultMaxLayers = 100;

  buildImage = attrs:
    assert checkArguments "buildImage" imageArguments attrs;
    assert attrs ? name || throw "buildImage: `name` is required: the image's repository name, such as name = \"hello\"";
    assert
      let
        fixed = length (attrs.layers or [ ]) + (if (attrs.copyToRoot or [ ]) == [ ] then 0 else 1);
        max = attrs.maxLayers or defaultMaxLayers;
      in
      # Equal is fine when the explicit layers hold the whole closure; only
      # the builder can tell.
      fixed <= max || throw "buildImage: `maxLayers` is ${toString max}, but the ${toString (length (attrs.layers or [ ]))} explicit `layers`${if (attrs.copyToRoot or [ ]) == [ ] then "" else " and the copyToRoot layer"} alone make ${toString fixed} layers; raise maxLayers to at least ${toString fixed}, and above it for the other store paths";
    let
      name = attrs.name;
      config = normConfig (attrs.config or { });
      copyToRoot = let c = attrs.copyToRoot or [ ]; in map str (if isList c then c else [ c ]);
      copyToRootValues = let c = attrs.copyToRoot or [ ]; in if isList c then c else [ c ];
      sbomArg = attrs.sbom or true;
      layers = attrs.layers or [ ];
      perms = map
        (p: p // { path = builtins.unsafeDiscardStringContext (str p.path); })
        (attrs.perms or [ ]);
      roots = closureRoots [ config copyToRoot ];
      baseName = let parts = filter isString (split "/" name); in builtins.elemAt parts (length parts - 1);

      imageDrv = tag: derivation {
        name = "${baseName}-oci-image";
        inherit system builder;
        args = [ "build-image" ];
        __structuredAttrs = true;
        exportReferencesGraph = { closure = roots; }
          # The explicit layers' store paths, with their hashes and
          # references, for the SBOM.
          // (if layers == [ ] || sbomArg == false then { } else { layerClosure = layers; });
        # The SBOM: the closure roots, and what evaluation knows about the
        # packages in the arguments and the explicit layers (docs/sbom.md).
        sbom = sbomAttr sbomArg roots
          (builtins.foldl' (a: l: a // (l.sbomMetadata or { })) { } layers
            // sbomMetadata { config = attrs.config or { }; copyToRoot = copyToRootValues; });
        outputs = [ "out" ];
        image = {
          inherit name tag config copyToRoot perms;
          layers = map (l: "${l}") layers;
          maxLayers = attrs.maxLayers or defaultMaxLayers;
          compression = attrs.compression or "gzip";
          created = attrs.created or "1970-01-01T00:00:01Z";
          os = attrs.os or "linux";
          arch = attrs.arch or defaultArch;
          annotations = attrs.annotations or { };
        };
      };

      # The default tag is the hash part of the same derivation's output path
      # with an empty tag: it changes whenever any input does, it is known at
      # evaluation (copy programs can use it), and it is never "latest".
      derivedTag = substring 0 32 (baseNameOf (builtins.unsafeDiscardStringContext (imageDrv "").outPath));
      tag = if attrs.tag or null == null then derivedTag else attrs.tag;
      drv = imageDrv tag;
    in
    finishImage (drv // withSbom drv sbomArg // {
      imageName = name;
      imageTag = tag;
      meta = { description = "OCI image layout ${name}:${tag}"; };
    });

  layerArguments = {
    deps = checkPackages;
    layers = checkLayers;
    compression = checkCompression;
    perms = checkPerms;
    name = v: if isString v && match "[0-9a-zA-Z+_?=-][0-9a-zA-Z+._?=-]*" v != null then null
      else "must be a store path name (letters, digits and +-._?=, not starting with a dot), not ${describe v}";
  };

  buildLayer = attrs:
    assert checkArguments "buildLayer" layerArguments attrs;
    assert attrs ? deps || throw "buildLayer: `deps` is required: the packages whose closure the layer holds, such as deps = [ pkgs.bash ]";
    let
      deps = let d = attrs.deps; in map str (if isList d then d else [ d ]);
      layers = attrs.layers or [ ];
      perms = map (p: p // { path = builtins.unsafeDiscardStringContext (str p.path); }) (attrs.perms or [ ]);
      drv = derivation {
        name = attrs.name or "oci-layer";
        inherit system builder;
        args = [ "build-layer" ];
        __structuredAttrs = true;
        exportReferencesGraph.closure = closureRoots deps;
        outputs = [ "out" ];
        layer = {
          inherit perms;
          layers = map (l: "${l}") layers;
          compression = attrs.compression or "gzip";
        };
      };
    in
    # sbomMetadata: what evaluation knows about deps, for the SBOM of the
    # images that list this layer.
    drv // { ociLayer = true; sbomMetadata = sbomMetadata attrs.deps; };
in
{
  inherit buildImage buildLayer;
}
