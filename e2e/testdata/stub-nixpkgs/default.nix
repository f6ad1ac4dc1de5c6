# `import nixpkgs { system; overlays; }` for the stand-in. Packages come from
# this machine: OCITOOLS_STUB_BIN is a directory holding bin/ocitools as
# e2e/flake_test.go built it from what package.nix asks of buildGoModule,
# OCITOOLS_STUB_BUSYBOX busybox-static with applet links. Evaluate with --impure.
{ system ? builtins.currentSystem, overlays ? [ ] }:
let
  lib = import ./lib.nix;
  env = name:
    let v = builtins.getEnv name; in
    if v == "" then throw "stub nixpkgs: set ${name} (and evaluate with --impure)" else v;
  busybox = builtins.path { path = /. + env "OCITOOLS_STUB_BUSYBOX"; name = "busybox"; };

  script = name: text: derivation {
    inherit name system text;
    builder = "${busybox}/bin/sh";
    args = [ "-c" "mkdir -p $out/bin && cp \"$textPath\" $out/bin/${name} && chmod 0555 $out/bin/${name}" ];
    passAsFile = [ "text" ];
  };

  base = self: {
    inherit lib system;
    stdenv = { buildPlatform.system = system; hostPlatform.system = system; };
    buildPackages = self;
    callPackage = f: args:
      let fn = if builtins.isFunction f then f else import f;
      in fn (builtins.intersectAttrs (builtins.functionArgs fn) self // args);
    # Stands in for nixpkgs' buildGoModule: refuses what the real one refuses
    # (unknown arguments, a vendorHash that is not SRI sha256, the removed
    # vendorSha256, env values that are not strings, numbers or booleans, a
    # missing mainProgram), exposes what it was asked as `goModuleArgs` for
    # e2e/flake_test.go, which builds exactly that from the filtered source
    # (go mod vendor checked against vendorHash, go build with ldflags), and
    # installs the binary that test built (OCITOOLS_STUB_BIN) under the names
    # of subPackages.
    buildGoModule = a:
      let
        allowed = [ "pname" "version" "src" "vendorHash" "subPackages" "env" "ldflags" "tags"
          "doCheck" "meta" "passthru" "proxyVendor" "modRoot" "excludedPackages" "checkFlags" ];
        unknown = builtins.filter (n: !(builtins.elem n allowed)) (builtins.attrNames a);
        fail = msg: throw "stub buildGoModule: ${msg}";
        isStrings = v: builtins.isList v && builtins.all builtins.isString v;
        envOK = builtins.all (n: let v = a.env.${n}; in builtins.isString v || builtins.isInt v || builtins.isBool v) (builtins.attrNames (a.env or { }));
        bin = builtins.path { path = /. + env "OCITOOLS_STUB_BIN"; name = "ocitools-static"; };
        src = "${a.src}";
        names = map baseNameOf a.subPackages;
        drv = derivation {
          name = "${a.pname}-${a.version}";
          inherit system;
          builder = "${busybox}/bin/sh";
          args = [ "-c" (builtins.concatStringsSep " && " ([ "${busybox}/bin/mkdir -p $out/bin" ]
            ++ map (n: "${busybox}/bin/cp ${bin}/bin/${n} $out/bin/${n}") names)) ];
        };
      in
      if a ? vendorSha256 then fail "vendorSha256 was removed; use vendorHash"
      else if unknown != [ ] then fail "unknown argument(s) ${builtins.concatStringsSep ", " unknown}"
      else if !(a ? pname && a ? version && a ? src && a ? vendorHash) then fail "pname, version, src and vendorHash are required"
      else if !(a.vendorHash == null || builtins.match "sha256-[A-Za-z0-9+/]{43}=" a.vendorHash != null) then fail "vendorHash must be null or an SRI sha256 hash, not ${a.vendorHash}"
      else if !(builtins.isPath a.src || builtins.isAttrs a.src || builtins.isString a.src) then fail "src must be a path or a derivation"
      else if !(isStrings (a.subPackages or [ ])) || !(isStrings (a.ldflags or [ ])) || !(isStrings (a.tags or [ ])) then fail "subPackages, ldflags and tags are lists of strings"
      else if !envOK then fail "env values must be strings, integers or booleans"
      else if !(builtins.isString (a.meta.mainProgram or null)) then fail "meta.mainProgram is not set (nix run and lib.getExe need it)"
      else if !(builtins.elem a.meta.mainProgram names) then fail "meta.mainProgram ${a.meta.mainProgram} is not among the programs subPackages build (${toString names})"
      else drv // {
        inherit (a) meta;
        goModuleArgs = {
          inherit src;
          inherit (a) pname version vendorHash subPackages;
          ldflags = a.ldflags or [ ];
          tags = a.tags or [ ];
          env = builtins.mapAttrs (_: v: if builtins.isBool v then (if v then "1" else "") else toString v) (a.env or { });
          doCheck = a.doCheck or true;
          mainProgram = a.meta.mainProgram;
        };
      };
    hello = script "hello" ''
      #!${busybox}/bin/sh
      if [ "$1" = --greeting ]; then echo "$2"; else echo "Hello, world!"; fi
    '';
    bash = script "bash" ''
      #!${busybox}/bin/sh
      exec ${busybox}/bin/sh "$@"
    '';
    ociTools = { buildImage = throw "stub nixpkgs: ociTools.buildImage is not stubbed"; };
  };

  fix = f: let x = f x; in x;
  withOverlays = self: builtins.foldl' (acc: o: acc // o self acc) (base self) overlays;
in
fix withOverlays
