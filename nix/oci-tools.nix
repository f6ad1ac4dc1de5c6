# ociTools, written with builtins only: it evaluates and builds without nixpkgs.
#
#   ociTools = import ./nix/oci-tools.nix { inherit ocitools; };
#
# `ocitools` is the ocitools package (a derivation) or a path to a directory that
# holds bin/ocitools (a static build). `system` is the Nix system the builder runs
# on; `hostSystem` the one the container's programs are for (the default arch).
{ ocitools, system ? builtins.currentSystem, hostSystem ? system }:

let
  known = builtins.fromJSON (builtins.readFile ../options/known.json);

  inherit (builtins)
    all any attrNames concatStringsSep elem filter head isAttrs isBool isList
    isString isInt length map match split substring stringLength throw typeOf;

  ocitoolsDir =
    if builtins.isPath ocitools then builtins.path { path = ocitools; name = "ocitools"; }
    else if isAttrs ocitools || isString ocitools then ocitools
    else throw "ociTools: `ocitools` must be the ocitools package or a path to a directory holding bin/ocitools, not a ${typeOf ocitools}";
  builder = "${ocitoolsDir}/bin/ocitools";

  fail = msg: throw "buildContainer: ${msg}";
  showList = xs: concatStringsSep ", " xs;
  quoteList = xs: showList (map (x: "\"${x}\"") xs);

  # The closure's roots: every store path any argument's strings refer to.
  inherit (import ./lib.nix) closureRoots sbomAttr sbomMetadata;

  # The checks at evaluation come from the argument table (options/known.json's
  # `arguments`; its comment says what each rule means): names, required
  # arguments, types, enumerations and string shapes. The builder applies the
  # same rules with the same messages, then checks everything deeply (spec/).
  table = known.arguments;
  knownNames = l: let v = known.${l}; in if isList v then v else attrNames v;

  typeMatches = want: v:
    let t = typeOf v; in
    want == t || (want == "stringlike" && (t == "string" || t == "path" || (t == "set" && v ? outPath)));
  typeWords = {
    string = "a string"; stringlike = "a string"; int = "an integer"; bool = "a boolean";
    list = "a list"; set = "an attribute set"; float = "a float"; null = "null"; path = "a path";
  };
  typeList = ts: concatStringsSep " or " (map (t: typeWords.${t}) ts);
  describe = v:
    if isString v then "the string \"${v}\""
    else if isList v then "a list"
    else if isAttrs v then "an attribute set"
    else if isInt v then "an integer"
    else if isBool v then "a boolean"
    else if v == null then "null"
    else "a ${typeOf v}";

  lowerChars = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  upperChars = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
  toUpper = builtins.replaceStrings lowerChars upperChars;
  toLower = builtins.replaceStrings upperChars lowerChars;

  imap = f: xs: builtins.genList (i: f i (builtins.elemAt xs i)) (length xs);
  firstError = errs: let e = filter (x: x != null) errs; in if e == [ ] then null else head e;
  attrPath = name: key: if match "[a-zA-Z_][a-zA-Z0-9_'-]*" key != null then "${name}.${key}" else "${name}.\"${key}\"";
  canonicalIn = s: prefix: list:
    if prefix == "" then elem s list
    else let u = toUpper s; in elem (if substring 0 (stringLength prefix) u == prefix then u else prefix + u) list;

  valuesPart = l: if known.labels ? ${l} then "${known.labels.${l}} ${quoteList (knownNames l)}" else quoteList (knownNames l);

  checkString = rule: s: where:
    if rule ? unsupported && known.${rule.unsupported} ? ${s} then "${where}: \"${s}\" is not supported: ${known.${rule.unsupported}.${s}}"
    else if rule ? values && !(elem s (builtins.concatMap knownNames rule.values)) then "${where}: unknown value \"${s}\"; valid values are ${concatStringsSep ", or " (map valuesPart rule.values)}"
    else if rule ? pattern && match rule.pattern s == null then "${where} must be ${rule.what}, not \"${s}\""
    else if rule ? names && !(canonicalIn s (rule.prefix or "") (knownNames rule.names)) then "${where}: unknown ${rule.nameWhat} \"${s}\"; valid names are ${showList (knownNames rule.names)}"
    else null;

  checkElement = rule: e: where:
    if rule ? elements && !(any (t: typeMatches t e) rule.elements) then "${where} must be ${typeList rule.elements}, not ${describe e}"
    else if isString e then checkString rule e where
    else if isList e then firstError (imap (i: x: if isString x then checkString rule x "${where}, element ${toString i}" else null) e)
    else null;

  checkSet = name: rule: v:
    let
      arg = "`${name}`";
      missing = filter (k: !(v ? ${k})) (rule.requiredKeys or [ ]);
      keyError = k:
        if rule ? keys && !(elem k rule.keys) then "${arg}: unknown attribute \"${k}\"; valid attributes are ${quoteList rule.keys}"
        else if rule ? keyPattern && match rule.keyPattern k == null then "${arg}: \"${k}\" must be ${rule.keyWhat}"
        else if rule ? keyNames && !(canonicalIn k (rule.prefix or "") (knownNames rule.keyNames)) then "${arg}: unknown ${rule.nameWhat} \"${k}\"; valid names are ${showList (knownNames rule.keyNames)}"
        else checkElement rule v.${k} "`${attrPath name k}`";
    in
    if missing != [ ] then "${arg} needs the attribute ${head missing}"
    else firstError (map keyError (attrNames v));

  # What is wrong with the value v of argument name, or null.
  checkArgument = name: v:
    let
      row = table.${name};
      arg = "`${name}`";
      allowed = attrNames row.types;
      matching = filter (t: typeMatches t v) allowed;
      t = head matching;
      rule = row.types.${t};
    in
    if matching == [ ] then "${arg} must be ${typeList allowed}, not ${describe v}"
    else if t == "stringlike" then (if isString v then checkString rule v arg else null)
    else if isString v then checkString rule v arg
    else if isInt v then (if rule ? min && v < rule.min then "${arg} must be at least ${toString rule.min}, not ${toString v}" else null)
    else if isList v then
      (if (rule.nonEmpty or false) && v == [ ] then "${arg} must not be empty"
       else firstError (imap (i: e: checkElement rule e "${arg}: element ${toString i}") v))
    else if isAttrs v then checkSet name rule v
    else null;

  # A typo gets the closest valid names: same letters ignoring case, or a shared prefix.
  suggest = n:
    let
      near = filter (a: toLower a == toLower n || (stringLength n >= 3 && substring 0 3 (toLower a) == substring 0 3 (toLower n))) (attrNames table);
    in
    if near == [ ] then "" else " (did you mean ${quoteList near}?)";

  # The message buildContainer throws for attrs (after "buildContainer: "), or
  # null when the table's checks pass.
  checkArguments = attrs:
    let
      unknown = filter (n: !(table ? ${n})) (attrNames attrs);
      missing = filter (n: (table.${n}.required or false) && !(attrs ? ${n})) (attrNames table);
      errors = filter (e: e != null) (map (n: checkArgument n attrs.${n}) (attrNames attrs));
    in
    if unknown != [ ] then
      "unknown argument ${showList (map (n: "`${n}`${suggest n}") unknown)}; valid arguments are ${showList (attrNames table)}"
    else if missing != [ ] then
      "`${head missing}` is required: ${table.${head missing}.doc}"
    else if errors != [ ] then head errors
    else null;

  buildContainer = attrs:
    let
      error = checkArguments attrs;
      # users and groups: the table checks their shape, buildImage's checks
      # the rest (uid 0 is root, distinct uids, homes).
      accountError = firstError (map
        (n: if attrs ? ${n} then (let e = images.accountChecks.${n} attrs.${n}; in if e == null then null else "`${n}` ${e}") else null)
        [ "users" "groups" ]);

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
        os = attrs.os or table.os.default;
        arch = attrs.arch or defaultArch;
      } // (if contents == [ ] then { } else { contents = contentPaths; });

      roots = closureRoots container;
      sbomArg = attrs.sbom or table.sbom.default;
      drv = derivation {
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
