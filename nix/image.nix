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
    if v == "now" then "\"now\" is refused: the image would differ on every build (nix-build --check fails, caches miss); give a fixed RFC 3339 time such as \"2024-01-01T00:00:00Z\", or leave it out (1970-01-01T00:00:01Z)"
    else if isString v && match "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})" v != null then null
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

  # uid and gid: a number, or the name of a user or group of the image.
  checkId = what: v:
    if (isInt v && v >= 0) || (isString v && match accountName v != null) then null
    else "${what} must be a non-negative integer or a ${if what == "uid" then "user" else "group"} name, not ${describe v}";
  checkMode = where: v:
    if isString v && match "0?[0-7]{3,4}" v != null && match "0*" v == null then null
    else "${where}: mode must be an octal string such as \"0755\" (Nix has no octal numbers: 0755 is seven hundred and fifty-five), not ${describe v}";

  permKeys = [ "path" "regex" "glob" "mode" "uid" "gid" "recursive" ];
  checkPerm = i: p:
    let where = "element ${toString i}"; in
    if !(isAttrs p) then "${where} must be { path, mode ? \"0755\", uid ? 0, gid ? 0, recursive ? false } or { regex | glob, ... }, not ${describe p}"
    else
      let
        extra = filter (n: !(elem n permKeys)) (attrNames p);
        what = if p ? path then str p.path else p.regex or p.glob or "?";
      in
      if extra != [ ] then "${where}: unknown attribute ${quoteList extra}; valid attributes are ${showList permKeys}"
      else if p ? regex && p ? glob then "${where}: give regex or glob, not both"
      else if !(p ? path) && !(p ? regex) && !(p ? glob) then "${where}: give `path` (an absolute path in the image), `regex` or `glob`"
      else if p ? path && !(isStringLike p.path) then "${where}: `path` must be an absolute path in the image, not ${describe p.path}"
      else if p ? path && substring 0 1 (str p.path) != "/" then "${where}: path \"${str p.path}\" must be absolute"
      else if p ? regex && !(isString p.regex && p.regex != "") then "${where}: regex must be a non-empty string (matched against whole absolute paths), not ${describe p.regex}"
      else if p ? glob && !(isString p.glob && substring 0 1 p.glob == "/") then "${where}: glob must be an absolute path pattern such as \"/etc/*.conf\", not ${describe p.glob}"
      else if p ? mode && checkMode "${where} (${what})" p.mode != null then checkMode "${where} (${what})" p.mode
      else if p ? uid && checkId "uid" p.uid != null then "${where} (${what}): ${checkId "uid" p.uid}"
      else if p ? gid && checkId "gid" p.gid != null then "${where} (${what}): ${checkId "gid" p.gid}"
      else if p ? recursive && !(isBool p.recursive) then "${where} (${what}): recursive must be a boolean"
      else null;
  checkPerms = v:
    if !(isList v) then "must be a list of { path | regex | glob, mode ?, uid ?, gid ?, recursive ? }, not ${describe v}"
    else firstError (builtins.genList (i: checkPerm i (builtins.elemAt v i)) (length v));

  # Users, groups, dirs and files: the root layer (docs/buildImage.md).
  accountName = "[a-z_][a-z0-9_-]{0,30}\\$?";
  inStore = p: p == "/nix" || p == "/nix/store" || substring 0 11 p == "/nix/store/";
  cleanAbs = p: isString p && substring 0 1 p == "/" && match ".*(//|/\\./|/\\.\\./|/\\.?\\.?$).*" p == null;
  # users may be a list of { name, uid, ... } or an attribute set name -> { uid, ... }.
  normUsers = v: if isAttrs v && !(v ? outPath) then map (n: { name = n; } // v.${n}) (attrNames v) else v;
  userKeys = [ "name" "uid" "gid" "home" "shell" "groups" "description" ];
  groupKeys = [ "name" "gid" "members" ];
  checkUser = i: u:
    let where = "element ${toString i}${if isAttrs u && u ? name && isString u.name then " (${u.name})" else ""}"; in
    if !(isAttrs u) then "${where} must be { name, uid, gid ? uid, home ? \"/home/NAME\", shell ? \"/bin/sh\", groups ? [ ] }, not ${describe u}"
    else let extra = filter (n: !(elem n userKeys)) (attrNames u); in
      if extra != [ ] then "${where}: unknown attribute ${quoteList extra}; valid attributes are ${showList userKeys}"
      else if !(u ? name) || !(isString u.name) || match accountName u.name == null then "${where}: name must be a user name (up to 32 lower-case letters, digits, '_' or '-', starting with a letter or '_'), not ${describe (u.name or null)}"
      else if !(u ? uid) || !(isInt u.uid) || u.uid < 0 || u.uid > 4294967294 then "${where}: uid must be an integer between 0 and 4294967294, not ${describe (u.uid or null)}"
      else if u.uid == 0 && u.name != "root" then "${where}: uid 0 is root's; a user with uid 0 must be named root (give this user another uid, such as 1000)"
      else if u.name == "root" && u.uid != 0 then "${where}: root's uid is 0, not ${toString u.uid}; give this user another name"
      else if u ? gid && !(isInt u.gid && u.gid >= 0 && u.gid <= 4294967294) then "${where}: gid must be an integer between 0 and 4294967294, not ${describe u.gid}"
      else if u ? home && !(u.home == "/" || cleanAbs u.home) then "${where}: home must be a clean absolute path such as \"/home/${u.name}\" or \"/var/lib/${u.name}\", not ${describe u.home}"
      else if u ? home && inStore u.home then "${where}: home ${u.home} is in the Nix store, which is read-only; use a path such as \"/var/lib/${u.name}\""
      else if u ? shell && !(isStringLike u.shell) then "${where}: shell must be a path, not ${describe u.shell}"
      else if u ? groups && !(isList u.groups && all isString u.groups) then "${where}: groups must be a list of group names, not ${describe u.groups}"
      else null;
  dupOf = xs: i: elem (builtins.elemAt xs i) (builtins.genList (j: builtins.elemAt xs j) i);
  checkUsers = v0:
    let v = normUsers v0; in
    if !(isList v) then "must be a list of { name, uid, ... } or an attribute set of users by name, not ${describe v0}"
    else
      let
        e = firstError (builtins.genList (i: checkUser i (builtins.elemAt v i)) (length v));
        names = map (u: u.name) v;
        uids = map (u: u.uid) v;
        dupName = filter (dupOf names) (builtins.genList (i: i) (length v));
        dupUid = filter (dupOf uids) (builtins.genList (i: i) (length v));
        owner = uid: head (filter (u: u.uid == uid) v);
      in
      if e != null then e
      else if dupName != [ ] then "element ${toString (head dupName)}: the name ${builtins.elemAt names (head dupName)} is given twice; each user once"
      else if dupUid != [ ] then let u = builtins.elemAt v (head dupUid); in "element ${toString (head dupUid)} (${u.name}): uid ${toString u.uid} is also ${(owner u.uid).name}'s; uids must be distinct"
      else null;
  checkGroup = i: g:
    let where = "element ${toString i}"; in
    if !(isAttrs g) then "${where} must be { name, gid, members ? [ ] }, not ${describe g}"
    else let extra = filter (n: !(elem n groupKeys)) (attrNames g); in
      if extra != [ ] then "${where}: unknown attribute ${quoteList extra}; valid attributes are ${showList groupKeys}"
      else if !(g ? name) || !(isString g.name) || match accountName g.name == null then "${where}: name must be a group name (up to 32 lower-case letters, digits, '_' or '-'), not ${describe (g.name or null)}"
      else if !(g ? gid) || !(isInt g.gid) || g.gid < 0 || g.gid > 4294967294 then "${where} (${g.name}): gid must be an integer between 0 and 4294967294, not ${describe (g.gid or null)}"
      else if g.gid == 0 && g.name != "root" then "${where} (${g.name}): gid 0 is root's group; a group with gid 0 must be named root"
      else if g.name == "root" && g.gid != 0 then "${where} (root): the root group's gid is 0, not ${toString g.gid}; give this group another name"
      else if g ? members && !(isList g.members && all isString g.members) then "${where} (${g.name}): members must be a list of user names"
      else null;
  checkGroups = v:
    if !(isList v) then "must be a list of { name, gid, members ? [ ] }, not ${describe v}"
    else
      let
        e = firstError (builtins.genList (i: checkGroup i (builtins.elemAt v i)) (length v));
        dup = filter (i: dupOf (map (g: g.name) v) i || dupOf (map (g: g.gid) v) i) (builtins.genList (i: i) (length v));
      in
      if e != null then e
      else if dup != [ ] then "element ${toString (head dup)} (${(builtins.elemAt v (head dup)).name}): its name or gid is given twice; group names and gids must be distinct"
      else null;

  dirKeys = [ "path" "mode" "uid" "gid" ];
  normDir = d: if isString d then { path = d; } else d;
  checkDir = i: d0:
    let d = normDir d0; where = "element ${toString i}"; in
    if !(isAttrs d) then "${where} must be a path or { path, mode ? \"0755\", uid ? 0, gid ? 0 }, not ${describe d0}"
    else let extra = filter (n: !(elem n dirKeys)) (attrNames d); in
      if extra != [ ] then "${where}: unknown attribute ${quoteList extra}; valid attributes are ${showList dirKeys}"
      else if !(d ? path) || !(cleanAbs d.path) then "${where}: path must be a clean absolute path such as \"/var/lib/app\", not ${describe (d.path or null)}"
      else if inStore d.path then "${where}: ${d.path} is in the Nix store (or is /nix), which the closure's layers make read-only; valid paths are outside /nix/store, such as \"/var/lib/app\""
      else if d ? mode && checkMode "${where} (${d.path})" d.mode != null then checkMode "${where} (${d.path})" d.mode
      else if d ? uid && checkId "uid" d.uid != null then "${where} (${d.path}): ${checkId "uid" d.uid}"
      else if d ? gid && checkId "gid" d.gid != null then "${where} (${d.path}): ${checkId "gid" d.gid}"
      else null;
  checkDirs = v:
    if !(isList v) then "must be a list of paths or { path, mode ?, uid ?, gid ? }, not ${describe v}"
    else firstError (builtins.genList (i: checkDir i (builtins.elemAt v i)) (length v));

  fileKeys = [ "path" "text" "source" "symlink" "mode" "uid" "gid" ];
  checkFile = i: f:
    let where = "element ${toString i}"; in
    if !(isAttrs f) || f ? outPath then "${where} must be { path, text | source | symlink, mode ?, uid ?, gid ? }, not ${describe f}"
    else let
      extra = filter (n: !(elem n fileKeys)) (attrNames f);
      kinds = filter (k: f ? ${k}) [ "text" "source" "symlink" ];
    in
      if extra != [ ] then "${where}: unknown attribute ${quoteList extra}; valid attributes are ${showList fileKeys}"
      else if !(f ? path) || !(cleanAbs f.path) then "${where}: path must be a clean absolute path such as \"/etc/app.conf\", not ${describe (f.path or null)}"
      else if inStore f.path then "${where}: ${f.path} is in the Nix store; valid paths are outside /nix/store"
      else if length kinds != 1 then "${where} (${f.path}): give exactly one of text, source or symlink"
      else if f ? text && !(isString f.text) then "${where} (${f.path}): text must be a string"
      else if f ? source && !(isStringLike f.source && builtins.substring 0 (stringLength builtins.storeDir + 1) (str f.source) == "${builtins.storeDir}/") then "${where} (${f.path}): source must be a file in the Nix store (\"\${pkg}/etc/file\"), not ${describe f.source}"
      else if f ? symlink && !(isStringLike f.symlink && str f.symlink != "") then "${where} (${f.path}): symlink must be the link's target"
      else if f ? symlink && f ? mode then "${where} (${f.path}): a symlink has no mode"
      else if f ? mode && checkMode "${where} (${f.path})" f.mode != null then checkMode "${where} (${f.path})" f.mode
      else if f ? uid && checkId "uid" f.uid != null then "${where} (${f.path}): ${checkId "uid" f.uid}"
      else if f ? gid && checkId "gid" f.gid != null then "${where} (${f.path}): ${checkId "gid" f.gid}"
      else null;
  checkFiles = v:
    if !(isList v) then "must be a list of { path, text | source | symlink, ... } (for instance from ociTools.caCertificates), not ${describe v}"
    else firstError (builtins.genList (i: checkFile i (builtins.elemAt v i)) (length v));

  copyToRootModes = [ "copy" "symlink" ];
  checkCopyToRootMode = v:
    if elem v copyToRootModes then null
    else "must be \"copy\" (the packages' files at /, the default) or \"symlink\" (buildEnv-style links into the store), not ${describe v}";

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
    # Docker's own fields (docs/buildImage.md: where Docker and podman read them).
    Healthcheck = checkHealthcheck;
    OnBuild = checkStringList;
    Shell = checkStringList;
    Hostname = v: if isString v && stringLength v <= 64 then null else "must be a host name of at most 64 bytes, not ${describe v}";
    Domainname = v: if isString v && stringLength v <= 64 then null else "must be a domain name of at most 64 bytes, not ${describe v}";
    StopTimeout = v: if isInt v && v >= 0 then null else "must be a number of seconds, not ${describe v}";
  };
  healthKeys = [ "Test" "Interval" "Timeout" "StartPeriod" "StartInterval" "Retries" ];
  checkHealthcheck = v:
    if !(isAttrs v) || v ? outPath then "must be { Test = [ \"CMD\" \"/bin/check\" ]; Interval ? nanoseconds; Timeout ?; StartPeriod ?; Retries ?; }, not ${describe v}"
    else let extra = filter (n: !(elem n healthKeys)) (attrNames v); in
      if extra != [ ] then "unknown field ${quoteList extra}; valid fields are ${showList healthKeys} (durations in nanoseconds, as Docker's config holds them)"
      else if v ? Test && !(isList v.Test && all isStringLike v.Test) then "Test must be a list of strings such as [ \"CMD\" \"/bin/check\" ] or [ \"NONE\" ]"
      else let bad = filter (k: k != "Test" && !(isInt v.${k} && v.${k} >= 0)) (attrNames v); in
        if bad != [ ] then "${head bad} must be a non-negative integer (nanoseconds for durations), not ${describe v.${head bad}}"
        else null;
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
    (removeAttrs c [ "Entrypoint" "Cmd" "Env" "ExposedPorts" "Volumes" "Healthcheck" ])
    // (if c ? Healthcheck then { inherit (c) Healthcheck; } else { })
    // (if c ? Entrypoint then { Entrypoint = map str c.Entrypoint; } else { })
    // (if c ? Cmd then { Cmd = map str c.Cmd; } else { })
    // (if c ? Healthcheck && c.Healthcheck ? Test then { Healthcheck = c.Healthcheck // { Test = map str c.Healthcheck.Test; }; } else { })
    // (if c ? Env then { Env = if isList c.Env then c.Env else map (n: "${n}=${toString c.Env.${n}}") (attrNames c.Env); } else { })
    // (if c ? ExposedPorts then { ExposedPorts = toSet c.ExposedPorts; } else { })
    // (if c ? Volumes then { Volumes = toSet c.Volumes; } else { });

  # ---- issue 16: stream and layering (move to options/known.json rows
  # once the argument table covers buildImage) ----
  checkStream = v: if isBool v then null else "must be a boolean (true: store only the manifest, config and stream.json; the layers are made again when copied), not ${describe v}";
  layeringStrategies = [ "popularity" "auto" "auto-derivations" ];
  checkLayering = v:
    if isString v then (if elem v layeringStrategies then null else "\"${v}\" is not a strategy: use ${quoteList layeringStrategies} or a list of groups (lists of packages), such as [ [ pkgs.glibc ] [ pkgs.python3 ] ]")
    else if isList v then
      let bad = filter (i: let g = builtins.elemAt v i; in !(isList g) || g == [ ] || !(all isStringLike g)) (builtins.genList (i: i) (length v)); in
      if v == [ ] then "must not be an empty list (leave it out for the default, \"popularity\")"
      else if bad != [ ] then "element ${toString (head bad)} must be a non-empty list of packages (one group, one layer), not ${describe (builtins.elemAt v (head bad))}"
      else null
    else "must be ${quoteList layeringStrategies} or a list of groups (lists of packages), not ${describe v}";
  # A list of groups: each group is a buildLayer over the layers below it, so
  # its derivation (and its compressed bytes) stays the same while its
  # packages do, whatever else in the image changes.
  groupLayers = attrs:
    let
      groups = if isList (attrs.layering or null) then attrs.layering else [ ];
      compression = attrs.compression or "gzip";
    in
    builtins.foldl' (below: g: below ++ [ (buildLayer { deps = g; layers = (attrs.layers or [ ]) ++ below; inherit compression; }) ]) [ ] groups;
  # layering = "auto-derivations": the "auto" groups, planned by a derivation
  # that compresses nothing and read at evaluation (import from derivation),
  # each built by a layer derivation of its own. A group's derivation depends
  # only on its paths (their strings lose the plan's context, and get their
  # own back), so a new app rebuilds the plan and its own group, and Nix
  # reuses every other group's compressed layer.
  plannedLayers = { roots, explicit, budget, compression, baseName }:
    let
      plan = derivation {
        name = "${baseName}-layer-plan";
        inherit system builder;
        args = [ "plan-layers" ];
        __structuredAttrs = true;
        exportReferencesGraph.closure = roots;
        outputs = [ "out" ];
        plan = { maxLayers = budget; layers = map (l: "${l}") explicit; };
      };
      groups = (builtins.fromJSON (builtins.unsafeDiscardStringContext (builtins.readFile "${plan}"))).groups;
      own = p: let q = builtins.unsafeDiscardStringContext p; in builtins.appendContext q { ${q} = { path = true; }; };
      layer = g: layerDerivation "oci-layer" (map own g)
        { paths = map builtins.unsafeDiscardStringContext g; layers = [ ]; perms = [ ]; inherit compression; };
    in
    map layer groups;
  # ---- end of issue 16's block ----

  imageArguments = {
    stream = checkStream;
    layering = checkLayering;
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
    fromImage = checkFromImage;
    copyToRootMode = checkCopyToRootMode;
    users = checkUsers;
    groups = checkGroups;
    dirs = checkDirs;
    files = checkFiles;
    # The Nix database (docs/buildImage.md, "initializeNixDatabase").
    initializeNixDatabase = v: if isBool v then null else "must be a boolean, not ${describe v}";
    nixUid = checkNixId;
    nixGid = checkNixId;
  } // dockerToolsArguments;

  # dockerTools' spellings (docs/buildImage.md, "Migrating from dockerTools").
  dockerToolsArguments = {
    contents = checkPackages;
    architecture = checkArch;
    compressor = v: if elem v (attrNames compressors) then null
      else "must be one of ${quoteList (attrNames compressors)} (dockerTools' names; `compression` is this builder's), not ${describe v}";
    meta = v: if isAttrs v then null else "must be an attribute set, not ${describe v}";
    passthru = v: if isAttrs v then null else "must be an attribute set, not ${describe v}";
  } // builtins.mapAttrs (n: why: _: why) refusedDockerArguments;
  compressors = { gz = "gzip"; gzip = "gzip"; zstd = "zstd"; none = "none"; };
  refusedDockerArguments = {
    runAsRoot = "is not supported: it runs a script as root in a VM. Give users with `users`/`groups`, directories with `dirs` (mode, uid, gid), files with `files`, and ownership or modes with `perms`; all are written into the layer without root";
    extraCommands = "is not supported: it runs a script in the image's root. Put files in a package and give it to `copyToRoot`, or give them with `files` and `dirs`";
    fakeRootCommands = "is not supported: it runs a script under fakeroot to set ownership. Give owners and modes with `perms` (path, regex or glob; uid and gid as numbers or names), `dirs` and `files`";
    enableFakechroot = "is not supported (it serves fakeRootCommands): use `perms`, `dirs` and `files`";
  };
  checkNixId = v: if isInt v && v >= 0 then null else "must be a non-negative integer (a uid or gid), not ${describe v}";

  # fromImage: a pullImage or buildImage result, or any OCI image layout.
  checkFromImage = v:
    if isStringLike v then null
    else "must be an OCI image layout (a pullImage, pullImageFromLock or buildImage result, or a path to one), not ${describe v}";
  goArch = a: known.archAliases.${a} or a;
  showPlatform = p: "${p.os}/${p.architecture}${if p ? variant then "/${p.variant}" else ""}";

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

  # The image's user names (config.User is checked against them): the
  # users given, plus root and nobody, which the builder adds.
  userNames = users: groups:
    let names = map (u: u.name) users; uids = map (u: u.uid) users; in
    names ++ filter (n: !(elem n names)) ((if elem 0 uids then [ ] else [ "root" ]) ++ (if elem 65534 uids then [ ] else [ "nobody" ]));
  groupNames = users: groups:
    map (g: g.name) groups ++ map (u: u.name) users ++ [ "root" "nobody" ];
  # uid and gid names in perms, dirs and files, and users' groups, must be
  # users and groups of the image (the builder says the same).
  checkOwnerNames = users: groups: args:
    let
      known = userNames users groups;
      knownGroups = groupNames users groups;
      bad = arg: i: e:
        if isString (e.uid or null) && !(elem e.uid known) then "`${arg}` element ${toString i}: uid \"${e.uid}\" is not a user of the image; known users are ${showList known} (add it to `users`, or give a number)"
        else if isString (e.gid or null) && !(elem e.gid knownGroups) then "`${arg}` element ${toString i}: gid \"${e.gid}\" is not a group of the image; known groups are ${showList knownGroups} (add it to `groups`, or give a number)"
        else null;
      errors = builtins.concatMap (arg: imap (bad arg) args.${arg}) (attrNames args)
        ++ map (u: let g = filter (g: !(elem g knownGroups)) (u.groups or [ ]); in
          if g == [ ] then null else "`users` ${u.name}: group \"${head g}\" is not a group of the image; known groups are ${showList knownGroups} (add it to `groups`)") users;
      e = firstError errors;
    in
    e == null || throw "buildImage: ${e}";
  imap = f: xs: builtins.genList (i: f i (builtins.elemAt xs i)) (length xs);

  checkConfigUser = users: groups: user:
    let
      parts = builtins.match "([^:]*)(:(.*))?" user;
      u = builtins.elemAt parts 0;
      g = builtins.elemAt parts 2;
      numeric = x: match "[0-9]+" x != null;
      known = userNames users groups;
    in
    if user == "" || (users == [ ] && groups == [ ]) then true
    else if !(numeric u) && !(elem u known) then throw "buildImage: `config`: User \"${user}\": \"${u}\" is not a user of the image; known users are ${showList known} (add it to `users`, or give a uid)"
    else if g != null && g != "" && !(numeric g) && !(elem g (groupNames users groups)) then throw "buildImage: `config`: User \"${user}\": \"${g}\" is not a group of the image; known groups are ${showList (groupNames users groups)}"
    else true;

  # dockerTools' spellings become ours; both spellings at once is an error.
  dockerAliases = { contents = "copyToRoot"; architecture = "arch"; compressor = "compression"; };
  fromDockerTools = attrs:
    let
      both = filter (n: attrs ? ${n} && attrs ? ${dockerAliases.${n}}) (attrNames dockerAliases);
      renamed = builtins.mapAttrs (n: v: if n == "compressor" then compressors.${v} else v)
        (builtins.intersectAttrs dockerAliases attrs);
    in
    if both != [ ] then throw "buildImage: `${head both}` (dockerTools' name) and `${dockerAliases.${head both}}` are the same argument; give only `${dockerAliases.${head both}}`"
    else removeAttrs attrs (attrNames dockerAliases ++ [ "meta" "passthru" ])
      // listToAttrs (map (n: { name = dockerAliases.${n}; value = renamed.${n}; }) (attrNames renamed));

  buildImage = attrs0:
    assert checkArguments "buildImage" imageArguments attrs0;
    let
      attrs = fromDockerTools attrs0;
      nixDB = attrs.initializeNixDatabase or false;
      nixUid = attrs.nixUid or 0;
      nixGid = attrs.nixGid or 0;
    in
    assert attrs ? name || throw "buildImage: `name` is required: the image's repository name, such as name = \"hello\"";
    assert
      let
        baseLayers = if isAttrs (attrs.fromImage or null) then attrs.fromImage.ociLayerCount or 0 else 0;
        fixed = length (attrs.layers or [ ]) + length (groupLayers attrs) + 1 + (if nixDB then 1 else 0) + baseLayers;
        max = attrs.maxLayers or defaultMaxLayers;
      in
      # Equal is fine when the explicit layers hold the whole closure; only
      # the builder can tell.
      fixed <= max || throw "buildImage: `maxLayers` is ${toString max}, but the ${toString (length (attrs.layers or [ ]))} explicit `layers`${if isList (attrs.layering or null) then ", the ${toString (length attrs.layering)} `layering` groups" else ""}${if baseLayers == 0 then "" else ", the ${toString baseLayers} layers of fromImage"} and the root layer (copyToRoot, users, dirs, /tmp)${if nixDB then " and the Nix database layer" else ""} alone make ${toString fixed} layers; raise maxLayers to at least ${toString fixed}, and above it for the other store paths";
    assert (nixUid == 0 && nixGid == 0) || nixDB
      || throw "buildImage: `nixUid` and `nixGid` (${toString nixUid}:${toString nixGid}) make the store and the Nix database belong to that user; they need `initializeNixDatabase = true`";
    assert (nixUid == 0 && nixGid == 0) || ((attrs.layers or [ ]) == [ ] && !(isList (attrs.layering or null)))
      || throw "buildImage: `nixUid` and `nixGid` (${toString nixUid}:${toString nixGid}): the explicit `layers` are built owned by 0:0 and would give the store back to root; leave nixUid and nixGid at 0 or leave out `layers`";
    # A base whose platform is known at evaluation must be this image's.
    assert
      let
        bp = if isAttrs (attrs.fromImage or null) then attrs.fromImage.ociPlatform or null else null;
        mine = { os = attrs.os or "linux"; architecture = goArch (attrs.arch or defaultArch); };
      in
      bp == null || (bp.os == mine.os && bp.architecture == mine.architecture)
      || throw "buildImage: `fromImage` ${attrs.fromImage.imageName or "(a base image)"} is an image for ${showPlatform bp}, but this image is for ${showPlatform mine}: set os/arch to match, or use a base for ${showPlatform mine} (pullImage's platform)";
    let
      name = attrs.name;
      config = normConfig (attrs.config or { });
      copyToRoot = let c = attrs.copyToRoot or [ ]; in map str (if isList c then c else [ c ]);
      copyToRootValues = let c = attrs.copyToRoot or [ ]; in if isList c then c else [ c ];
      sbomArg = attrs.sbom or true;
      explicitLayers = (attrs.layers or [ ]) ++ groupLayers attrs;
      layers = explicitLayers ++ (if (attrs.layering or null) != "auto-derivations" then [ ] else plannedLayers {
        inherit roots baseName;
        explicit = explicitLayers;
        budget = (attrs.maxLayers or defaultMaxLayers) - length explicitLayers - 1 - (if nixDB then 1 else 0)
          - (if isAttrs (attrs.fromImage or null) then attrs.fromImage.ociLayerCount or 0 else 0);
        compression = attrs.compression or "gzip";
      });
      perms = map
        (p: p // (if p ? path then { path = builtins.unsafeDiscardStringContext (str p.path); } else { }))
        (attrs.perms or [ ]);
      users = map (u: u // (if u ? shell then { shell = str u.shell; } else { })) (normUsers (attrs.users or [ ]));
      groups = attrs.groups or [ ];
      dirs = map normDir (attrs.dirs or [ ]);
      files = map (f: f // (if f ? source then { source = str f.source; } else { }) // (if f ? symlink then { symlink = str f.symlink; } else { })) (attrs.files or [ ]);
      # With a Nix database, the explicit layers' store paths are registered
      # too: their closure gives the NAR hashes.
      roots = closureRoots ([ config copyToRoot files users ] ++ (if nixDB then map (l: l.ociLayerRoots) explicitLayers else [ ]));
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
            // sbomMetadata { config = attrs.config or { }; copyToRoot = copyToRootValues; files = attrs.files or [ ]; });
        outputs = [ "out" ];
        image = {
          inherit name tag config copyToRoot perms users groups dirs files;
          layers = map (l: "${l}") layers;
          maxLayers = attrs.maxLayers or defaultMaxLayers;
          compression = attrs.compression or "gzip";
          created = attrs.created or "1970-01-01T00:00:01Z";
          os = attrs.os or "linux";
          arch = attrs.arch or defaultArch;
          annotations = attrs.annotations or { };
          copyToRootMode = attrs.copyToRootMode or "copy";
          initializeNixDatabase = nixDB;
          inherit nixUid nixGid;
        }
        # issue 16: left out when not given, so that earlier images keep
        # their derivations; a list of groups became `layers` above.
        // (if attrs.stream or false then { stream = true; } else { })
        // (if isString (attrs.layering or null) then { layering = if attrs.layering == "auto-derivations" then "auto" else attrs.layering; } else { })
        # A base and, when pulled, its registry name (push mounts its layers from there).
        // (if attrs ? fromImage then { fromImage = "${attrs.fromImage}"; } else { })
        // (if isAttrs (attrs.fromImage or null) && attrs.fromImage ? imageDigest
           then { fromImageName = attrs.fromImage.imageName + (if attrs.fromImage.imageTag or null == null then "" else ":${attrs.fromImage.imageTag}"); }
           else { });
      };

      # The default tag is the hash part of the same derivation's output path
      # with an empty tag: it changes whenever any input does, it is known at
      # evaluation (copy programs can use it), and it is never "latest".
      derivedTag = substring 0 32 (baseNameOf (builtins.unsafeDiscardStringContext (imageDrv "").outPath));
      tag = if attrs.tag or null == null then derivedTag else attrs.tag;
      drv = imageDrv tag;
    in
    assert checkConfigUser users groups (config.User or "");
    assert checkOwnerNames users groups { inherit perms dirs files; };
    finishImage (drv // withSbom drv sbomArg // (attrs0.passthru or { }) // {
      imageName = name;
      imageTag = tag;
      ociPlatform = { os = attrs.os or "linux"; architecture = goArch (attrs.arch or defaultArch); };
      meta = { description = "OCI image layout ${name}:${tag}"; } // (attrs0.meta or { });
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
    in
    # sbomMetadata: what evaluation knows about deps, for the SBOM of the
    # images that list this layer.
    layerDerivation (attrs.name or "oci-layer") (closureRoots deps) {
      inherit perms;
      layers = map (l: "${l}") layers;
      compression = attrs.compression or "gzip";
    } // { sbomMetadata = sbomMetadata attrs.deps; };

  # One build-layer derivation: the layer of roots' closure (or of exactly
  # layer.paths), with its arguments in the "layer" structured attribute.
  layerDerivation = name: roots: layer: derivation {
    inherit name system builder layer;
    args = [ "build-layer" ];
    __structuredAttrs = true;
    exportReferencesGraph.closure = roots;
    outputs = [ "out" ];
  } // { ociLayer = true; ociLayerRoots = roots; };

  # Helpers for the root layer (docs/buildImage.md, "A non-root service").
  # Each takes the package as an argument, so they work with nixpkgs
  # (caCertificates pkgs.cacert) and without it (any derivation or store
  # path with the same layout), and each returns `files` entries or `users`.
  helpers = rec {
    # The CA bundle at the paths TLS libraries look in (OpenSSL on Debian,
    # Go, Fedora, Nix's NIX_SSL_CERT_FILE default). cacert is a package with
    # etc/ssl/certs/ca-bundle.crt (nixpkgs' cacert), or the bundle file itself.
    caCertificates = cacert:
      let
        s = str cacert;
        bundle = if match ".*\\.(crt|pem)" s != null then s else "${s}/etc/ssl/certs/ca-bundle.crt";
      in
      map (path: { inherit path; symlink = bundle; }) [
        "/etc/ssl/certs/ca-certificates.crt"
        "/etc/ssl/certs/ca-bundle.crt"
        "/etc/pki/tls/certs/ca-bundle.crt"
      ];
    # /usr/bin/env, for scripts starting with #!/usr/bin/env: a package with
    # bin/env (coreutils, busybox).
    usrBinEnv = pkg: [ { path = "/usr/bin/env"; symlink = "${str pkg}/bin/env"; } ];
    # /bin/sh: a package with bin/sh (bash, dash, busybox).
    binSh = pkg: [ { path = "/bin/sh"; symlink = "${str pkg}/bin/sh"; } ];
    # dockerTools' fakeNss: root and nobody, with /etc/passwd, /etc/group,
    # /etc/shadow (locked) and /etc/nsswitch.conf. `users = fakeNss;`, or
    # `users = fakeNss ++ [ { name = "app"; uid = 1000; } ]`.
    fakeNss = [
      { name = "root"; uid = 0; gid = 0; home = "/root"; shell = "/bin/sh"; }
      { name = "nobody"; uid = 65534; gid = 65534; home = "/var/empty"; shell = "/bin/false"; }
    ];
  };

  # streamImage: buildImage { stream = true; }: the store keeps the manifest,
  # the config and stream.json; push, copy, archive and unpack make the
  # layers again (docs/buildImage.md, "Streamed images").
  streamImage = attrs: buildImage ((if isAttrs attrs then attrs else { }) // { stream = true; });
in
{
  inherit buildImage buildLayer streamImage helpers;
  # buildContainer's users and groups get the same checks.
  accountChecks = { users = checkUsers; groups = checkGroups; };
}
