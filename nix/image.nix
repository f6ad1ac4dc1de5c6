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
  inherit (builtins)
    all attrNames concatStringsSep elem elemAt filter genList head intersectAttrs isAttrs isList isString length
    listToAttrs map mapAttrs match split substring;
  inherit (import ./lib.nix) closureRoots builderOf ociDerivation firstError imap isStringLike repoBaseName showList sbomAttr sbomMetadata;
  table = import ./table.nix;

  builder = builderOf ocitools;

  # Arguments are checked at evaluation against their rows of the argument
  # table (options/known.json's tables.buildImage, buildLayer and the tables
  # of their values, by nix/table.nix); the builder applies the same rules
  # (image/options.go), then its deep checks.
  checked = fn: attrs: let e = table.check fn attrs; in e == null || throw "${fn}: ${e}";
  arg = table.arg "buildImage";

  str = v: if isString v then v else "${v}";
  pathList = v: map str (if isList v then v else [ v ]);
  # perms' paths are paths in the image, not dependencies.
  permsOf = ps: map (p: p // (if p ? path then { path = builtins.unsafeDiscardStringContext (str p.path); } else { })) ps;

  # The SBOM files a result holds, and the attributes pointing at them
  # (docs/sbom.md).
  sbomFiles = { cyclonedx = "sbom.cdx.json"; spdx = "sbom.spdx.json"; };
  withSbom = drv: sbom:
    let formats = if sbom == true then [ "cyclonedx" ] else if sbom == false then [ ] else sbom; in
    if formats == [ ] then { } else
    { sbom = "${drv}/${sbomFiles.${head formats}}"; }
    // (if elem "spdx" formats then { sbomSPDX = "${drv}/${sbomFiles.spdx}"; } else { });

  # Default arch: the host system's CPU, in the Nix spelling the builder maps.
  defaultArch = head (split "-" hostSystem);

  # What the table cannot say, checked at evaluation because Nix can tell
  # (the builder checks it again: image/users.go, image/options.go): how
  # values relate to each other, and paths the store owns.
  inStore = p: p == "/nix" || p == "/nix/store" || substring 0 11 p == "/nix/store/";
  unclean = p: match ".*(//|/\\./|/\\.\\./|/\\.?\\.?$).*" p != null;
  dupAt = xs: i: elem (elemAt xs i) (genList (j: elemAt xs j) i);
  firstDup = xs: let d = filter (dupAt xs) (genList (i: i) (length xs)); in if d == [ ] then null else head d;

  # users may be a list of { name, uid, ... } or an attribute set name -> { uid, ... }.
  normUsers = v: if isAttrs v then map (n: { name = n; } // v.${n}) (attrNames v) else v;
  userError = i: u:
    let where = "`users` element ${toString i}${if u ? name then " (${u.name})" else ""}"; in
    if !(u ? name) then "${where}: name is required in a list of users"
    else if u.uid == 0 && u.name != "root" then "${where}: uid 0 is root's; a user with uid 0 must be named root (give this user another uid, such as 1000)"
    else if u.name == "root" && u.uid != 0 then "${where}: root's uid is 0, not ${toString u.uid}; give this user another name"
    else if u ? home && u.home != "/" && unclean u.home then "${where}: home must be a clean absolute path such as \"/home/${u.name}\" or \"/var/lib/${u.name}\", not \"${u.home}\""
    else if u ? home && inStore u.home then "${where}: home ${u.home} is in the Nix store, which is read-only; use a path such as \"/var/lib/${u.name}\""
    else null;
  usersError = users:
    let
      names = map (u: u.name or null) users;
      uids = map (u: u.uid) users;
      dupName = firstDup names;
      dupUid = firstDup uids;
      owner = uid: head (filter (u: u.uid == uid) users);
    in
    firstError (imap userError users ++ [
      (if dupName != null then "`users` element ${toString dupName}: the name ${elemAt names dupName} is given twice; each user once" else null)
      (if dupUid != null then let u = elemAt users dupUid; in "`users` element ${toString dupUid} (${u.name}): uid ${toString u.uid} is also ${(owner u.uid).name}'s; uids must be distinct" else null)
    ]);
  groupsError = groups:
    let
      zero = filter (g: g.gid == 0 && g.name != "root") groups;
      badRoot = filter (g: g.name == "root" && g.gid != 0) groups;
      dup = let d = filter (i: dupAt (map (g: g.name) groups) i || dupAt (map (g: g.gid) groups) i) (genList (i: i) (length groups)); in if d == [ ] then null else head d;
    in
    if zero != [ ] then "`groups`: ${(head zero).name}: gid 0 is root's group; a group with gid 0 must be named root"
    else if badRoot != [ ] then "`groups` (root): the root group's gid is 0, not ${toString (head badRoot).gid}; give this group another name"
    else if dup != null then "`groups` element ${toString dup} (${(elemAt groups dup).name}): its name or gid is given twice; group names and gids must be distinct"
    else null;

  normDir = d: if isString d then { path = d; } else d;
  # dirs and files: outside the store, clean, usable modes; files one kind.
  entryError = what: i: e:
    let where = "`${what}` element ${toString i}"; kinds = filter (k: e ? ${k}) [ "text" "source" "symlink" ]; in
    if unclean e.path then "${where}: path must be a clean absolute path such as \"/var/lib/app\", not \"${e.path}\""
    else if inStore e.path then "${where}: ${e.path} is in the Nix store (or is /nix), which the closure's layers make read-only; valid paths are outside /nix/store, such as \"/var/lib/app\""
    else if e ? mode && match "0*" e.mode != null then "${where} (${e.path}): mode ${e.mode} leaves it unusable; give a mode such as \"0755\""
    else if what == "files" && length kinds != 1 then "${where} (${e.path}): give exactly one of text, source or symlink"
    else if e ? symlink && e ? mode then "${where} (${e.path}): a symlink has no mode"
    else if e ? source && substring 0 (builtins.stringLength builtins.storeDir + 1) (str e.source) != "${builtins.storeDir}/" then "${where} (${e.path}): source must be a file in the Nix store (\"\${pkg}/etc/file\"), not \"${str e.source}\""
    else null;
  permError = i: p:
    let where = "`perms` element ${toString i}"; in
    if p ? regex && p ? glob then "${where}: give regex or glob, not both"
    else if !(p ? path || p ? regex || p ? glob) then "${where}: give `path` (an absolute path in the image), `regex` or `glob`"
    else null;

  # The image's user and group names: those given, plus root and nobody,
  # which the builder adds.
  userNamesOf = users:
    let names = map (u: u.name) users; uids = map (u: u.uid) users; in
    names ++ filter (n: !(elem n names)) ((if elem 0 uids then [ ] else [ "root" ]) ++ (if elem 65534 uids then [ ] else [ "nobody" ]));
  groupNamesOf = users: groups: map (g: g.name) groups ++ map (u: u.name) users ++ [ "root" "nobody" ];

  # config.User against the image's users, when users or groups are given.
  configUserError = users: groups: user:
    let
      parts = match "([^:]*)(:(.*))?" user;
      u = elemAt parts 0;
      g = elemAt parts 2;
      numeric = x: match "[0-9]+" x != null;
      userNames = userNamesOf users;
      groupNames = groupNamesOf users groups;
    in
    if users == [ ] && groups == [ ] || user == "" then null
    else if !(numeric u) && !(elem u userNames) then "`config`: User \"${user}\": \"${u}\" is not a user of the image; known users are ${showList userNames} (add it to `users`, or give a uid)"
    else if g != null && g != "" && !(numeric g) && !(elem g groupNames) then "`config`: User \"${user}\": \"${g}\" is not a group of the image; known groups are ${showList groupNames}"
    else null;

  # layering: a list of groups, each a non-empty list of packages; each group
  # is a buildLayer over the layers below it, so its derivation (and its
  # compressed bytes) stays the same while its packages do, whatever else in
  # the image changes.
  groupsOf = attrs: let l = attrs.layering or null; in if isList l then l else [ ];
  layeringError = groups: firstError (imap (i: g: if g == [ ] || !(all isStringLike g) then "`layering` element ${toString i} must be a non-empty list of packages (one group, one layer)" else null) groups);
  groupLayers = attrs:
    builtins.foldl' (below: g: below ++ [ (buildLayer { deps = g; layers = (attrs.layers or [ ]) ++ below; compression = arg attrs "compression"; }) ]) [ ] (groupsOf attrs);
  # layering = "auto-derivations": the "auto" groups, planned by a derivation
  # that compresses nothing and read at evaluation (import from derivation),
  # each built by a layer derivation of its own. A group's derivation depends
  # only on its paths (their strings lose the plan's context, and get their
  # own back), so a new app rebuilds the plan and its own group, and Nix
  # reuses every other group's compressed layer.
  plannedLayers = { roots, explicit, budget, compression, baseName }:
    let
      plan = ociDerivation {
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

  # fromImage: a base whose platform is known at evaluation (pullImage's
  # ociPlatform) must be this image's; a locked base's layers count against
  # maxLayers.
  goArch = a: table.known.archAliases.${a} or a;
  showPlatform = p: "${p.os}/${p.architecture}${if p ? variant then "/${p.variant}" else ""}";
  baseOf = attrs: if isAttrs (attrs.fromImage or null) then attrs.fromImage else { };
  # fromImageName and fromImageTag pick an image inside fromImage (the builder
  # reads which images it holds).
  basePick = attrs: listToAttrs (map (n: { name = n; value = arg attrs n; })
    (filter (n: arg attrs n != null) [ "fromImageName" "fromImageTag" ]));
  basePickError = attrs:
    let given = attrNames (basePick attrs); in
    if given != [ ] && !(attrs ? fromImage)
    then "${concatStringsSep " and " (map (n: "`${n}`") given)} pick${if length given == 1 then "s" else ""} an image inside `fromImage`, which is not given"
    else null;
  platformError = attrs: mine:
    let bp = (baseOf attrs).ociPlatform or null; in
    if bp == null || (bp.os == mine.os && bp.architecture == mine.architecture) then null
    else "`fromImage` ${(baseOf attrs).imageName or "(a base image)"} is an image for ${showPlatform bp}, but this image is for ${showPlatform mine}: set os/arch to match, or use a base for ${showPlatform mine} (pullImage's platform)";

  # uid and gid names in perms, dirs and files, and users' groups, must be
  # users and groups of the image (the builder says the same).
  ownerNamesError = users: groups: args:
    let
      known = userNamesOf users;
      knownGroups = groupNamesOf users groups;
      bad = arg: i: e:
        if isString (e.uid or null) && !(elem e.uid known) then "`${arg}` element ${toString i}: uid \"${e.uid}\" is not a user of the image; known users are ${showList known} (add it to `users`, or give a number)"
        else if isString (e.gid or null) && !(elem e.gid knownGroups) then "`${arg}` element ${toString i}: gid \"${e.gid}\" is not a group of the image; known groups are ${showList knownGroups} (add it to `groups`, or give a number)"
        else null;
    in
    firstError (builtins.concatMap (arg: imap (bad arg) args.${arg}) (attrNames args)
      ++ map (u: let g = filter (g: !(elem g knownGroups)) (u.groups or [ ]); in
        if g == [ ] then null else "`users` ${u.name}: group \"${head g}\" is not a group of the image; known groups are ${showList knownGroups} (add it to `groups`)") users);

  # dockerTools' spellings become ours (the table's nixOnly rows); both
  # spellings at once is an error.
  dockerAliases = { contents = "copyToRoot"; architecture = "arch"; compressor = "compression"; };
  fromDockerTools = attrs:
    let
      both = filter (n: attrs ? ${n} && attrs ? ${dockerAliases.${n}}) (attrNames dockerAliases);
      renamed = mapAttrs (n: v: if n == "compressor" then table.known.compressors.${v} else v) (intersectAttrs dockerAliases attrs);
    in
    if both != [ ] then throw "buildImage: `${head both}` (dockerTools' name) and `${dockerAliases.${head both}}` are the same argument; give only `${dockerAliases.${head both}}`"
    else removeAttrs attrs (attrNames dockerAliases ++ [ "meta" "passthru" ])
      // listToAttrs (map (n: { name = dockerAliases.${n}; value = renamed.${n}; }) (attrNames renamed));

  buildImage = attrs0:
    assert checked "buildImage" attrs0;
    let
      attrs = fromDockerTools attrs0;
      nixDB = arg attrs "initializeNixDatabase";
      nixUid = arg attrs "nixUid";
      nixGid = arg attrs "nixGid";
      name = attrs.name;
      # The config as given: the builder normalises it (image/options.go).
      config = arg attrs "config";
      copyToRoot = pathList (arg attrs "copyToRoot");
      sbomArg = arg attrs "sbom";
      explicitLayers = arg attrs "layers" ++ groupLayers attrs;
      layers = explicitLayers ++ (if (attrs.layering or null) != "auto-derivations" then [ ] else plannedLayers {
        inherit roots baseName;
        explicit = explicitLayers;
        budget = max - length explicitLayers - 1 - (if nixDB then 1 else 0) - baseLayers;
        compression = arg attrs "compression";
      });
      users = map (u: u // (if u ? shell then { shell = str u.shell; } else { })) (normUsers (arg attrs "users"));
      groups = arg attrs "groups";
      dirs = map normDir (arg attrs "dirs");
      files = map (f: f // (if f ? source then { source = str f.source; } else { }) // (if f ? symlink then { symlink = str f.symlink; } else { })) (arg attrs "files");
      perms = arg attrs "perms";
      layeringGroups = groupsOf attrs;
      baseLayers = (baseOf attrs).ociLayerCount or 0;
      fixed = length explicitLayers + 1 + (if nixDB then 1 else 0) + baseLayers;
      platform = { os = arg attrs "os"; architecture = goArch (attrs.arch or defaultArch); };
      max = arg attrs "maxLayers";
      error = firstError [
        # Equal is fine when the explicit layers hold the whole closure; only
        # the builder can tell.
        (layeringError layeringGroups)
        (if fixed > max then "`maxLayers` is ${toString max}, but the ${toString (length explicitLayers - length layeringGroups)} explicit `layers`${if layeringGroups != [ ] then ", the ${toString (length layeringGroups)} `layering` groups" else ""}${if baseLayers == 0 then "" else ", the ${toString baseLayers} layers of fromImage"} and the root layer (copyToRoot, users, dirs, /tmp)${if nixDB then " and the Nix database layer" else ""} alone make ${toString fixed} layers; raise maxLayers to at least ${toString fixed}, and above it for the other store paths" else null)
        (if (nixUid != 0 || nixGid != 0) && !nixDB then "`nixUid` and `nixGid` (${toString nixUid}:${toString nixGid}) make the store and the Nix database belong to that user; they need `initializeNixDatabase = true`" else null)
        (if (nixUid != 0 || nixGid != 0) && explicitLayers != [ ] then "`nixUid` and `nixGid` (${toString nixUid}:${toString nixGid}): the explicit `layers` are built owned by 0:0 and would give the store back to root; leave nixUid and nixGid at 0 or leave out `layers`" else null)
        (usersError users)
        (groupsError groups)
        (firstError (imap (entryError "dirs") dirs))
        (firstError (imap (entryError "files") files))
        (firstError (imap permError perms))
        (configUserError users groups (config.User or ""))
        (platformError attrs platform)
        (basePickError attrs)
        (ownerNamesError users groups { inherit perms dirs files; })
      ];
      # With a Nix database, the explicit layers' store paths are registered
      # too: their closure gives the NAR hashes.
      roots = closureRoots ([ config copyToRoot files users ] ++ (if nixDB then map (l: l.ociLayerRoots) explicitLayers else [ ]));
      baseName = repoBaseName name;

      imageDrv = tag: ociDerivation {
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
            // sbomMetadata { config = attrs.config or { }; copyToRoot = attrs.copyToRoot or [ ]; files = attrs.files or [ ]; });
        outputs = [ "out" ];
        image = {
          inherit name tag config copyToRoot users groups dirs files nixUid nixGid;
          layers = pathList layers;
          perms = permsOf perms;
          maxLayers = max;
          compression = arg attrs "compression";
          created = arg attrs "created";
          os = arg attrs "os";
          arch = attrs.arch or defaultArch;
          annotations = arg attrs "annotations";
          copyToRootMode = arg attrs "copyToRootMode";
          initializeNixDatabase = nixDB;
        }
        # Left out when not given, so that earlier images keep their
        # derivations; a list of groups became `layers` above.
        // (if arg attrs "stream" then { stream = true; } else { })
        // (if isString (attrs.layering or null) then { layering = if attrs.layering == "auto-derivations" then "auto" else attrs.layering; } else { })
        # A base and, when pulled, its registry name (push mounts its layers from there).
        // (if attrs ? fromImage then { fromImage = "${attrs.fromImage}"; } else { })
        // (if (baseOf attrs) ? imageDigest
           then { fromImageRef = attrs.fromImage.imageName + (if attrs.fromImage.imageTag or null == null then "" else ":${attrs.fromImage.imageTag}"); }
           else { })
        # Which image of fromImage, when it holds several (dockerTools' pair).
        // basePick attrs;
      };

      # The default tag is the hash part of the same derivation's output path
      # with an empty tag: it changes whenever any input does, it is known at
      # evaluation (copy programs can use it), and it is never "latest".
      derivedTag = substring 0 32 (baseNameOf (builtins.unsafeDiscardStringContext (imageDrv "").outPath));
      tag = if attrs.tag or null == null then derivedTag else attrs.tag;
      drv = imageDrv tag;
    in
    if error != null then throw "buildImage: ${error}"
    else finishImage (drv // withSbom drv sbomArg // (attrs0.passthru or { }) // {
      imageName = name;
      imageTag = tag;
      ociPlatform = platform;
      meta = { description = "OCI image layout ${name}:${tag}"; } // (attrs0.meta or { });
    });

  buildLayer = attrs:
    assert checked "buildLayer" attrs;
    let
      layerArg = table.arg "buildLayer" attrs;
      perms = layerArg "perms";
      error = firstError (imap permError perms);
    in
    if error != null then throw "buildLayer: ${error}"
    # sbomMetadata: what evaluation knows about deps, for the SBOM of the
    # images that list this layer.
    else layerDerivation (layerArg "name") (closureRoots (pathList attrs.deps)) {
      layers = pathList (layerArg "layers");
      perms = permsOf perms;
      compression = layerArg "compression";
    } // { sbomMetadata = sbomMetadata attrs.deps; };

  # One build-layer derivation: the layer of roots' closure (or of exactly
  # layer.paths), with its arguments in the "layer" structured attribute.
  layerDerivation = name: roots: layer: ociDerivation {
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
  helpers = {
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
  # buildContainer's users and groups get the same checks (after the
  # table's): the first message, or null.
  accountsError = attrs: firstError [ (usersError (attrs.users or [ ])) (groupsError (attrs.groups or [ ])) ];
}
