# The few nixpkgs lib functions the flake and nix/package.nix use. Each refuses
# what nixpkgs' own refuses where the package could get it wrong (a fileset
# member that does not exist, an unknown file attribute), so that a mistake in
# package.nix fails here as it would with nixpkgs.
let
  inherit (builtins) all any isFunction isPath pathExists stringLength substring throw toString typeOf;

  isPrefix = pre: s: substring 0 (stringLength pre) s == pre;
  under = dir: p: p == dir || isPrefix (dir + "/") p;

  # A file set is { _fileset = true; root; has = path: type: bool; dirs }:
  # `has` says whether a file belongs; `dirs` are the paths whose ancestors
  # toSource must keep to reach them.
  isFileset = v: v ? _fileset;
  fromPath = p:
    if !(isPath p) then throw "lib.fileset: expected a path or a file set, got a ${typeOf p}"
    else if !(pathExists p) then throw "lib.fileset: ${toString p} does not exist"
    else { _fileset = true; has = path: _: under (toString p) path; dirs = [ (toString p) ]; };
  coerce = v: if isFileset v then v else fromPath v;

  fileset = {
    unions = list:
      let sets = map coerce list; in
      { _fileset = true; has = path: type: any (s: s.has path type) sets; dirs = builtins.concatLists (map (s: s.dirs) sets); };
    fileFilter = pred: root:
      if !(isFunction pred) then throw "lib.fileset.fileFilter: the predicate is not a function"
      else if !(isPath root) then throw "lib.fileset.fileFilter: the root is not a path"
      else {
        _fileset = true;
        dirs = [ (toString root) ];
        has = path: type:
          under (toString root) path && type != "directory" &&
          (let
            name = baseNameOf path;
            file = {
              inherit name type;
              hasExt = ext: builtins.match ".+\\.${ext}" name != null;
            };
          in pred file);
      };
    toSource = { root, fileset }:
      let
        set = coerce fileset;
        r = toString root;
      in
      if !(isPath root) then throw "lib.fileset.toSource: root must be a path"
      else if !(all (d: under r d) set.dirs) then throw "lib.fileset.toSource: a file set member lies outside the root ${r}"
      else builtins.path {
        path = root;
        name = "source";
        filter = path: type:
          if type == "directory" then any (d: under path d || under d path) set.dirs
          else set.has path type;
      };
  };
in
{
  inherit fileset;
  genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
  licenses.asl20 = { spdxId = "Apache-2.0"; };
  platforms.linux = [ "x86_64-linux" "aarch64-linux" ];
}
