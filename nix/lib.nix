# Helpers shared by ociTools' wrappers (buildContainer, buildImage, the argument
# tables of nix/table.nix), builtins only.
#
#   inherit (import ./lib.nix) closureRoots;
#   exportReferencesGraph.closure = closureRoots arguments;
let
  inherit (builtins)
    attrNames attrValues concatLists filter foldl' getContext head isList isString
    listToAttrs replaceStrings split stringLength substring toJSON;

  storeDirRe = replaceStrings [ "." "+" ] [ "\\." "\\+" ] builtins.storeDir;
  # Nix's store-path hash and name characters: a looser class would take the `;`
  # of "cat ${cfg};" as part of the name.
  hashRe = "[0-9a-df-np-sv-z]{32}";
  nameRe = "[0-9a-zA-Z+._?=-]+";

  hasPrefix = pre: s: substring 0 (stringLength pre) s == pre;
  hasSuffix = suf: s:
    let n = stringLength s; m = stringLength suf;
    in n >= m && substring (n - m) m s == suf;
  lowerChars = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  upperChars = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
  dropSuffix = suf: s: if hasSuffix suf s then substring 0 (stringLength s - stringLength suf) s else s;

  # The store-path names a string context refers to. A source (path = true) is
  # named by its key; a derivation's outputs (outputs = [ ... ]) are named after
  # the derivation, "NAME" for out and "NAME-OUTPUT" for the others (the key is
  # the .drv path, the output paths are not in the context); the .drv file itself
  # (allOutputs) by its key.
  contextNames = ctx: concatLists (map
    (key:
      let
        c = ctx.${key};
        base = substring 33 (stringLength (baseNameOf key)) (baseNameOf key);
        drvName = dropSuffix ".drv" base;
      in
      (if c.path or false || c.allOutputs or false then [ base ] else [ ])
      ++ map (o: if o == "out" then drvName else "${drvName}-${o}") (c.outputs or [ ]))
    (attrNames ctx));

  # The longest of names that the name part of a store path in a string starts
  # with: "${hello}.old" reads as HASH-hello.old, whose store path is HASH-hello.
  longestPrefix = names: s: foldl'
    (best: n: if hasPrefix n s && (best == null || stringLength n > stringLength best) then n else best)
    null
    names;
in
rec {
  /* closureRoots value: the store paths that the strings anywhere in `value`
     (strings, lists, attribute sets, derivations, paths, nested) refer to through
     their Nix string context, each carrying that context, as
     exportReferencesGraph wants them: exactly store paths, no subpaths.

     builtins.toJSON keeps the context of every string it serialises (a
     derivation becomes its outPath, a path is added to the store), so one
     string holds all of it; the store paths are found in it by their shape and
     cut to the length the context names, so that text glued to a store path
     ("${pkg}.old", "x=${pkg}_y") roots the store path, not a path that does not
     exist. A store path written as a literal, without context, is not a
     dependency of the derivation and is left out, as Nix leaves it out. */
  closureRoots = value:
    let
      s = if isString value then value else toJSON value;
      ctx = getContext s;
      names = contextNames ctx;
      found = filter isList (split "${storeDirRe}/(${hashRe})-(${nameRe})" s);
      root = m:
        let name = longestPrefix names (head (builtins.tail m)); in
        if name == null then null else "${builtins.storeDir}/${head m}-${name}";
      roots = filter (r: r != null) (map root found);
      unique = attrNames (listToAttrs (map (r: { name = r; value = null; }) roots));
    in
    if ctx == { } then [ ] else map (r: builtins.appendContext r ctx) unique;

  /* sbomMetadata value: what evaluation knows about the derivations found
     anywhere in `value` (not inside derivations), keyed by output path, in the
     shape the builder's sbom package reads (docs/sbom.md): pname, version,
     meta.description, meta.homepage, meta.license (SPDX ids where the licence
     has one) and the string-valued meta.identifiers (cpe, purl, ...), for
     the derivations that have pname, version or meta. Every
     output of a derivation gets the entry; the builder uses those in the
     closure. Strings lose their context: metadata is no dependency. */
  sbomMetadata = value:
    let
      isDrv = v: builtins.isAttrs v && (v.type or null) == "derivation" && v ? outPath;
      found = v:
        if isDrv v then [ v ]
        else if isList v then concatLists (map found v)
        else if builtins.isAttrs v && !(v ? outPath) then concatLists (map found (attrValues v))
        else [ ];
      plain = v: if isString v then builtins.unsafeDiscardStringContext v else null;
      license = l:
        if isString l then { name = plain l; }
        else if builtins.isAttrs l then { spdxId = plain (l.spdxId or null); name = plain (l.fullName or l.shortName or null); url = plain (l.url or null); }
        else { };
      entry = drv:
        let
          meta = if builtins.isAttrs (drv.meta or null) then drv.meta else { };
          lic = meta.license or [ ];
          home = meta.homepage or null;
          ids = if builtins.isAttrs (meta.identifiers or null) then meta.identifiers else { };
        in
        {
          pname = plain (drv.pname or null);
          version = plain (drv.version or null);
          description = plain (meta.description or null);
          homepage = plain (if isList home then (if home == [ ] then null else head home) else home);
          licenses = map license (if isList lic then lic else [ lic ]);
          identifiers = listToAttrs (map (n: { name = n; value = plain ids.${n}; }) (filter (n: isString ids.${n}) (attrNames ids)));
        };
      outputsOf = drv:
        let outs = if isList (drv.outputs or null) then map (o: drv.${o} or null) drv.outputs else [ ];
        in [ drv ] ++ filter (o: o != null && o ? outPath) outs;
      # A derivation without pname, version or meta adds nothing to its name.
      described = filter (drv: drv ? pname || drv ? version || drv ? meta) (found value);
      pairs = concatLists (map (drv: map (o: { name = builtins.unsafeDiscardStringContext o.outPath; value = entry drv; }) (outputsOf drv)) described);
    in
    listToAttrs pairs;

  /* sbomAttr arg roots metadata: the builder's `sbom` attribute for the
     argument `sbom` (true: CycloneDX; a list of "cyclonedx" and "spdx"; false:
     none), the closure roots and metadata (sbomMetadata's shape). */
  sbomAttr = arg: roots: metadata:
    if arg == false || arg == [ ] then null
    else {
      formats = if arg == true then [ "cyclonedx" ] else arg;
      roots = map builtins.unsafeDiscardStringContext roots;
      inherit metadata;
    };

  inherit contextNames;

  # Messages: a value as an error names it, lists of names.
  describe = v:
    if isString v then "the string \"${v}\""
    else if isList v then "a list"
    else if builtins.isAttrs v then "an attribute set"
    else if builtins.isInt v then "an integer"
    else if builtins.isBool v then "a boolean"
    else if v == null then "null"
    else "a ${builtins.typeOf v}";
  showList = xs: builtins.concatStringsSep ", " xs;
  quoteList = xs: builtins.concatStringsSep ", " (map (x: "\"${x}\"") xs);

  toUpper = replaceStrings lowerChars upperChars;
  toLower = replaceStrings upperChars lowerChars;

  # The first non-null of a list of messages, or null.
  firstError = errs: let e = filter (x: x != null) errs; in if e == [ ] then null else head e;
  imap = f: xs: builtins.genList (i: f i (builtins.elemAt xs i)) (builtins.length xs);

  # The last component of a repository name ("registry.example/team/app" ->
  # "app"), for store names; a ":" (a port, a tag) becomes "-".
  repoBaseName = name:
    let parts = filter isString (split "/" name); in
    replaceStrings [ ":" ] [ "-" ] (builtins.elemAt parts (builtins.length parts - 1));

  isStringLike = v: isString v || builtins.isPath v || (builtins.isAttrs v && v ? outPath);

  # `derivation` for every ociTools build: preferLocalBuild, because the
  # inputs are a closure already on this machine, which a remote builder would
  # first have to receive (and then send the image back), and because Nix then
  # skips starting its build hook (about 50 ms a build). With max-jobs = 0, or
  # a system this machine cannot build, the build still goes to a remote
  # builder.
  ociDerivation = attrs: derivation (attrs // { preferLocalBuild = true; });

  # The builder: bin/ocitools of `ocitools`, the ocitools package or a path to
  # a directory holding bin/ocitools (a static build).
  builderOf = ocitools:
    if builtins.isPath ocitools then "${builtins.path { path = ocitools; name = "ocitools"; }}/bin/ocitools"
    else if builtins.isAttrs ocitools || isString ocitools then "${ocitools}/bin/ocitools"
    else throw "ociTools: `ocitools` must be the ocitools package or a path to a directory holding bin/ocitools, not a ${builtins.typeOf ocitools}";
}
