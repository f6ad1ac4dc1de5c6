# ociTools, written with builtins only: it evaluates and builds without nixpkgs.
#
#   ociTools = import ./nix/oci-tools.nix { inherit ocitools; };
#
# `ocitools` is the ocitools package (a derivation) or a path to a directory that
# holds bin/ocitools (a static build). `system` is the Nix system the builder runs
# on; `hostSystem` the one the container's programs are for (the default arch).
{ ocitools, system ? builtins.currentSystem, hostSystem ? system }:

let
  known = builtins.fromJSON (builtins.readFile ../spec/known.json);

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
  inherit (import ./lib.nix) closureRoots;

  # Argument names and their checks. A check returns null when the value is fine,
  # else what is wrong with it.
  isStringList = v: isList v && all isString v;
  isAbsoluteList = v: isStringList v && all (p: substring 0 1 p == "/") v;
  isStringAttrs = v: isAttrs v && all (n: isString v.${n}) (attrNames v);
  expect = what: ok: v: if ok v then null else "must be ${what}, not ${describe v}";
  describe = v:
    if isString v then "the string \"${v}\""
    else if isList v then "a list"
    else if isAttrs v then "an attribute set"
    else if builtins.isInt v then "an integer" else "a ${typeOf v}";

  # Strings, and what interpolates into one: a derivation (the seed's
  # `args = [ (writeScript ...) ]`) or a path.
  isStringLike = v: isString v || builtins.isPath v || (isAttrs v && v ? outPath);
  checkArgs = v:
    if !(isList v) then "must be a list of strings, not ${describe v}"
    else if v == [ ] then "must not be empty: it is the command the container runs (args[0] is the program)"
    else if !(all isStringLike v) then "must be a list of strings (or derivations); element ${toString (firstIndex (x: !(isStringLike x)) v)} is ${describe (builtins.elemAt v (firstIndex (x: !(isStringLike x)) v))}"
    else null;

  firstIndex = pred: xs:
    let go = i: if i >= length xs then -1 else if pred (builtins.elemAt xs i) then i else go (i + 1);
    in go 0;

  checkMount = dest: m:
    if substring 0 1 dest != "/" then "\"${dest}\": the destination must be an absolute path (start with /)"
    else if !(isAttrs m) then "\"${dest}\" must be an attribute set { type, source, options ? [] }, not ${describe m}"
    else
      let extra = filter (n: !(elem n [ "type" "source" "options" ])) (attrNames m); in
      if extra != [ ] then "\"${dest}\": unknown attribute ${quoteList extra}; valid attributes are type, source, options"
      else if !(m ? type) then "\"${dest}\": `type` is missing (for example \"tmpfs\" or \"bind\")"
      else if !(isString m.type) || m.type == "" then "\"${dest}\".type must be a non-empty string"
      else if !(m ? source) then "\"${dest}\": `source` is missing (a host path for bind mounts, else the file system's name, such as \"tmpfs\")"
      else if !(isString m.source) then "\"${dest}\".source must be a string, not ${describe m.source}"
      else if (m ? options) && !(isStringList m.options) then "\"${dest}\".options must be a list of strings, not ${describe m.options}"
      else null;

  checkMounts = v:
    if !(isAttrs v) then "must be an attribute set mapping each destination to { type, source, options ? [] }, not ${describe v}"
    else
      let errs = filter (e: e != null) (map (d: checkMount d v.${d}) (attrNames v));
      in if errs == [ ] then null else head errs;

  checkOS = v:
    if !(isString v) then "must be a string (a GOOS value such as \"linux\"), not ${describe v}"
    else if known.unsupportedOS ? ${v} then "\"${v}\" is not supported: ${known.unsupportedOS.${v}}"
    else if !(elem v known.os) then "unknown value \"${v}\"; valid values are the GOOS values ${quoteList known.os}"
    else null;

  checkArch = v:
    if !(isString v) then "must be a string (a GOARCH value such as \"amd64\"), not ${describe v}"
    else if elem v known.arch || known.archAliases ? ${v} then null
    else "unknown value \"${v}\"; valid values are the GOARCH values ${quoteList known.arch}, or the Nix spellings ${quoteList (attrNames known.archAliases)}";

  checkAbsolute = v:
    if !(isString v) then "must be an absolute path string, not ${describe v}"
    else if substring 0 1 v != "/" then "must be an absolute path (start with /), not \"${v}\""
    else null;

  checkUser = v:
    if isString v then
      (if match "[0-9]+(:[0-9]+)?" v != null then null
       else "must be \"uid\" or \"uid:gid\" with numeric ids (for example \"1000:100\"), or { uid, gid, additionalGids ? [] }; got \"${v}\"")
    else if isAttrs v then
      let extra = filter (n: !(elem n [ "uid" "gid" "additionalGids" ])) (attrNames v); in
      if extra != [ ] then "unknown attribute ${quoteList extra}; valid attributes are uid, gid, additionalGids"
      else if !(v ? uid) || !(isInt v.uid) || v.uid < 0 then "uid must be a non-negative integer"
      else if !(v ? gid) || !(isInt v.gid) || v.gid < 0 then "gid must be a non-negative integer"
      else if (v ? additionalGids) && !(isList v.additionalGids && all (g: isInt g && g >= 0) v.additionalGids) then "additionalGids must be a list of non-negative integers"
      else null
    else "must be \"uid:gid\" or { uid, gid, additionalGids ? [] }, not ${describe v}";

  checkEnv = v:
    if isAttrs v then
      (if all (n: isString v.${n} || isInt v.${n} || isAttrs v.${n}) (attrNames v) then null
       else "values must be strings")
    else if isList v then
      (if all (e: isString e && match "[^=]+=.*" e != null) v then null
       else "a list must hold \"NAME=value\" strings")
    else "must be an attribute set of strings or a list of \"NAME=value\" strings, not ${describe v}";

  lowerChars = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  upperChars = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
  toUpper = builtins.replaceStrings lowerChars upperChars;
  toLower = builtins.replaceStrings upperChars lowerChars;
  capName = c: let u = toUpper c; in if substring 0 4 u == "CAP_" then u else "CAP_${u}";
  checkCapList = where: v:
    if !(isStringList v) then "${where}must be a list of capability names, not ${describe v}"
    else
      let bad = filter (c: !(elem (capName c) known.capabilities)) v; in
      if bad == [ ] then null
      else "${where}unknown capability ${quoteList bad}; valid names are ${showList known.capabilities}";
  capSets = [ "bounding" "effective" "permitted" "inheritable" "ambient" ];
  checkCaps = v:
    if isList v then checkCapList "" v
    else if isAttrs v then
      let
        extra = filter (n: !(elem n capSets)) (attrNames v);
        errs = filter (e: e != null) (map (n: checkCapList "${n}: " v.${n}) (attrNames v));
      in
      if extra != [ ] then "unknown set ${quoteList extra}; valid sets are ${showList capSets}"
      else if errs != [ ] then head errs
      else null
    else "must be a list of capability names or an attribute set of sets (${showList capSets}), not ${describe v}";

  nsType = n: if isAttrs n then n.type or null else n;
  checkNamespaces = v:
    if !(isList v) then "must be a list of namespace types (or { type, path }), not ${describe v}"
    else
      let
        types = map nsType v;
        bad = filter (t: !(isString t) || !(elem t known.namespaces)) types;
      in
      if bad != [ ] then "unknown namespace ${showList (map (t: if isString t then "\"${t}\"" else describe t) bad)}; valid types are ${quoteList known.namespaces}"
      else if length (builtins.attrNames (builtins.listToAttrs (map (t: { name = t; value = true; }) types))) != length types
      then "lists a namespace type twice: ${quoteList types}"
      else null;

  rlimitName = n: let u = toUpper n; in if substring 0 7 u == "RLIMIT_" then u else "RLIMIT_${u}";
  checkRlimits = v:
    if !(isAttrs v) then "must be an attribute set such as { NOFILE = { soft = 1024; hard = 1024; }; }, not ${describe v}"
    else
      let bad = filter (n: !(elem (rlimitName n) known.rlimits)) (attrNames v); in
      if bad != [ ] then "unknown limit ${quoteList bad}; valid names are ${showList known.rlimits}"
      else if !(all (n: isInt v.${n} || (isAttrs v.${n} && isInt (v.${n}.soft or null) && isInt (v.${n}.hard or null))) (attrNames v))
      then "each limit must be a number or { soft, hard } with integers"
      else null;

  checkShmSize = v:
    if isInt v then (if v > 0 then null else "must be positive")
    else if isString v then
      (if match "[0-9]+[kKmMgG]?" v != null then null
       else "must be a size such as \"64m\", \"1g\" or a number of bytes; got \"${v}\"")
    else "must be a size string such as \"64m\" or a number of bytes, not ${describe v}";

  checkStoreMode = v:
    if isString v && elem v known.storeModes then null
    else "must be one of ${quoteList known.storeModes}, not ${describe v}";

  checkContents = v:
    if !(isList v) then "must be a list of packages (derivations or store paths), not ${describe v}"
    else null;

  # Every argument with its check. Options the builder needs go into the
  # `container` attribute under the same names.
  arguments = {
    args = checkArgs;
    mounts = checkMounts;
    readonly = expect "a boolean" isBool;
    os = checkOS;
    arch = checkArch;
    name = v: if isString v && match "[0-9a-zA-Z+._?=-]+" v != null && substring 0 1 v != "." then null
      else "must be a store path name (letters, digits and +-._?=, not starting with a dot), not ${describe v}";
    env = checkEnv;
    workingDir = checkAbsolute;
    user = checkUser;
    hostname = expect "a string" isString;
    terminal = expect "a boolean" isBool;
    capabilities = checkCaps;
    noNewPrivileges = expect "a boolean" isBool;
    rlimits = checkRlimits;
    namespaces = checkNamespaces;
    maskedPaths = expect "a list of absolute paths" isAbsoluteList;
    readonlyPaths = expect "a list of absolute paths" isAbsoluteList;
    shmSize = checkShmSize;
    annotations = expect "an attribute set of strings" isStringAttrs;
    extraConfig = expect "an attribute set (deep-merged into config.json)" isAttrs;
    storeMode = checkStoreMode;
    verify = expect "a boolean" isBool;
    contents = checkContents;
    copyToRoot = checkContents;
  };

  # A typo gets the closest valid names: same letters ignoring case, or a shared prefix.
  suggest = n:
    let
      lower = toLower;
      near = filter (a: lower a == lower n || (stringLength n >= 3 && substring 0 3 (lower a) == substring 0 3 (lower n))) (attrNames arguments);
    in
    if near == [ ] then "" else " (did you mean ${quoteList near}?)";

  buildContainer = attrs:
    let
      unknown = filter (n: !(arguments ? ${n})) (attrNames attrs);
      errors = filter (e: e != null)
        (map (n: let e = arguments.${n} attrs.${n}; in if e == null then null else "`${n}` ${e}") (attrNames attrs));

      args = map (a: "${a}") attrs.args;
      contents = (attrs.contents or [ ]) ++ (attrs.copyToRoot or [ ]);
      contentPaths = map (c: "${c}") contents;

      # Default arch: the host system's CPU, in the Nix spelling the builder maps.
      defaultArch = head (split "-" hostSystem);
      name = attrs.name or (
        let base = baseNameOf (builtins.unsafeDiscardStringContext (head args));
            clean = match "[.]*([0-9a-zA-Z+_?=-][0-9a-zA-Z+._?=-]*).*" base;
        in if clean == null then "oci-bundle" else "${head clean}-oci-bundle");

      passed = removeAttrs attrs [ "name" "contents" "copyToRoot" ];
      container = passed // {
        inherit args;
        os = attrs.os or "linux";
        arch = attrs.arch or defaultArch;
      } // (if contents == [ ] then { } else { contents = contentPaths; });

      drv = derivation {
        inherit name system builder container;
        args = [ "build" ];
        __structuredAttrs = true;
        # Every store path the configuration mentions is in the rootfs: args,
        # contents, and the strings of env, mounts, annotations, extraConfig, ...
        exportReferencesGraph.closure = closureRoots container;
        outputs = [ "out" ];
      };
    in
    if unknown != [ ] then
      fail "unknown argument ${showList (map (n: "`${n}`${suggest n}") unknown)}; valid arguments are ${showList (attrNames arguments)}"
    else if !(attrs ? args) then
      fail "`args` is required: the command the container runs, as a list of strings, for example args = [ \"\${pkgs.hello}/bin/hello\" ]"
    else if errors != [ ] then
      fail (head errors)
    else
      drv // {
        meta = { description = "OCI runtime bundle running ${builtins.unsafeDiscardStringContext (head args)}"; mainProgram = name; };
      };
in
{
  inherit buildContainer;
  # OCI images (docs/buildImage.md).
  inherit (import ./image.nix { inherit ocitools system hostSystem; }) buildImage buildLayer;
}
