# The argument tables (options/known.json) at evaluation, builtins only: every
# wrapper (buildContainer, buildImage, buildLayer, buildIndex, archive) checks
# its arguments here. options/table.go applies the same rules with the same
# messages in the builder; options/tabletest runs every row through both.
#
#   table = import ./table.nix;
#   table.check "buildImage" attrs   # the message to throw, or null
#   table.rows "buildImage"          # the rows, by name (defaults: .default)
let
  known = builtins.fromJSON (builtins.readFile ../options/known.json);

  inherit (builtins)
    any attrNames concatMap concatStringsSep elem elemAt filter genList head isAttrs isList
    isString isInt length listToAttrs map mapAttrs match substring stringLength typeOf;
  inherit (import ./lib.nix) describe showList quoteList toUpper toLower firstError imap;

  # A row copies the row it is `like` ("table.row"), then its own fields; its
  # `shape` adds types shared by rows (known.json's shapes).
  rawTable = fn: if fn == "buildContainer" then known.arguments else known.tables.${fn};
  resolve = fn: name:
    let
      row = (rawTable fn).${name};
      like = match "([^.]*)[.](.*)" (row.like or "");
      base = if like == null then { } else resolve (elemAt like 0) (elemAt like 1);
      merged = base // removeAttrs row [ "like" ];
    in
    merged // { types = (if merged ? shape then known.shapes.${merged.shape} else { }) // (merged.types or { }); };
  # The rows a caller may give (internal ones are the wrapper's own).
  rows = fn: listToAttrs (filter (r: !(r.value.internal or false)) (map (n: { name = n; value = resolve fn n; }) (attrNames (rawTable fn))));

  knownNames = l: let v = known.${l}; in if isList v then v else attrNames v;

  typeMatches = want: v:
    let t = typeOf v; in
    want == t || (want == "stringlike" && (t == "string" || t == "path" || (t == "set" && v ? outPath)));
  typeWords = {
    string = "a string"; stringlike = "a string"; int = "an integer"; bool = "a boolean";
    list = "a list"; set = "an attribute set"; float = "a float"; null = "null"; path = "a path";
  };
  typeList = ts: concatStringsSep " or " (map (t: typeWords.${t}) ts);
  # What a value of the wrong type should have been: the words of the one
  # type's pattern when there is one, else the types.
  expected = row:
    let ts = attrNames row.types; in
    if length ts == 1 && row.types.${head ts} ? what then row.types.${head ts}.what else typeList ts;

  attrPath = name: key: if match "[a-zA-Z_][a-zA-Z0-9_'-]*" key != null then "${name}.${key}" else "${name}.\"${key}\"";
  canonicalIn = s: prefix: list:
    if prefix == "" then elem s list
    else let u = toUpper s; in elem (if substring 0 (stringLength prefix) u == prefix then u else prefix + u) list;

  valuesPart = l: if known.labels ? ${l} then "${known.labels.${l}} ${quoteList (knownNames l)}" else quoteList (knownNames l);

  checkString = rule: s: where:
    if rule ? unsupported && known.${rule.unsupported} ? ${s} then "${where}: \"${s}\" is not supported: ${known.${rule.unsupported}.${s}}"
    else if rule ? values && !(elem s (concatMap knownNames rule.values)) then "${where}: unknown value \"${s}\"; valid values are ${concatStringsSep ", or " (map valuesPart rule.values)}"
    else if rule ? maxLength && stringLength s > rule.maxLength then "${where} must be at most ${toString rule.maxLength} bytes long, not ${toString (stringLength s)}"
    else if rule ? pattern && match rule.pattern s == null then "${where} must be ${rule.what}, not \"${s}\""
    else if rule ? names && !(canonicalIn s (rule.prefix or "") (knownNames rule.names)) then "${where}: unknown ${rule.nameWhat} \"${s}\"; valid names are ${showList (knownNames rule.names)}"
    else null;

  checkElement = rule: e: where:
    if rule ? elements && !(any (t: typeMatches t e) rule.elements) then "${where} must be ${typeList rule.elements}, not ${describe e}"
    else if rule ? marker && !(isAttrs e && (e.${rule.marker} or false) == true) then "${where} is ${describe e}, not ${rule.markerWhat}"
    else if isString e then checkString rule e where
    else if isList e then firstError (imap (i: x: if isString x then checkString rule x "${where}, element ${toString i}" else null) e)
    else if isAttrs e && rule ? elementTable then checkSub rule.elementTable e where
    else null;

  # Elements are compared as the builder sees them: a derivation as its path.
  asSeen = e: if isAttrs e && e ? outPath then builtins.unsafeDiscardStringContext "${e}" else e;
  checkList = rule: v: arg:
    let
      seen = map asSeen v;
      dup = i: rule.unique or false && elem (elemAt seen i) (genList (j: elemAt seen j) i);
      check = i: e:
        let where = "${arg}: element ${toString i}"; err = checkElement rule e where; in
        if err != null then err else if dup i then "${where} is the same as an earlier one: list each once" else null;
    in
    if (rule.nonEmpty or false) && v == [ ] then "${arg} must not be empty"
    else firstError (imap check v);

  checkSet = prefix: name: rule: v:
    let
      arg = "${prefix}`${name}`";
      missing = filter (k: !(v ? ${k})) (rule.requiredKeys or [ ]);
      keyError = k:
        if rule ? keys && !(elem k rule.keys) then "${arg}: unknown attribute \"${k}\"; valid attributes are ${quoteList rule.keys}"
        else if rule ? keyPattern && match rule.keyPattern k == null then "${arg}: \"${k}\" must be ${rule.keyWhat}"
        else if rule ? keyNames && !(canonicalIn k (rule.prefix or "") (knownNames rule.keyNames)) then "${arg}: unknown ${rule.nameWhat} \"${k}\"; valid names are ${showList (knownNames rule.keyNames)}"
        else checkElement rule v.${k} "${prefix}`${attrPath name k}`";
    in
    if rule ? table then checkSub rule.table v arg
    else if missing != [ ] then "${arg} needs the attribute ${head missing}"
    else firstError (map keyError (attrNames v));

  # What is wrong with the value v of argument name, or null.
  checkValue = prefix: name: row: v:
    let
      arg = "${prefix}`${name}`";
      allowed = attrNames (row.types or { });
      matching = filter (t: typeMatches t v) allowed;
      t = head matching;
      rule = row.types.${t};
      n = toString v;
    in
    if row ? refuse then "${arg} is not supported: ${row.refuse}"
    else if matching == [ ] then "${arg} must be ${expected row}, not ${describe v}"
    else if t == "stringlike" then (if isString v then checkString rule v arg else null)
    else if isString v then checkString rule v arg
    else if isInt v then
      (if rule ? min && rule ? max && (v < rule.min || v > rule.max) then "${arg} must be between ${toString rule.min} and ${toString rule.max}, not ${n}"
       else if rule ? min && v < rule.min then "${arg} must be at least ${toString rule.min}, not ${n}"
       else if rule ? max && v > rule.max then "${arg} must be at most ${toString rule.max}, not ${n}"
       else null)
    else if isList v then checkList rule v arg
    else if isAttrs v then checkSet prefix name rule v
    else null;

  # A typo gets the closest valid names: same letters ignoring case, a shared
  # prefix of three letters, or a row's alias.
  suggest = table: n:
    let
      l = toLower n;
      near = filter (a: toLower a == l || (stringLength n >= 3 && substring 0 3 (toLower a) == substring 0 3 l) || elem l (table.${a}.aliases or [ ])) (attrNames table);
    in
    if near == [ ] then "" else " (did you mean ${quoteList near}?)";

  # The first required row missing, then each value in name order.
  checkFields = table: prefix: attrs:
    let missing = filter (n: (table.${n}.required or false) && !(attrs ? ${n})) (attrNames table); in
    if missing != [ ] then "${prefix}`${head missing}` is required: ${table.${head missing}.doc}"
    else firstError (map (n: checkValue prefix n table.${n} attrs.${n}) (attrNames attrs));

  # An attribute set checked against a sub-table's rows (config, a perms element).
  checkSub = fn: v: where:
    let
      table = rows fn;
      unknown = filter (n: !(table ? ${n})) (attrNames v);
      k = head unknown;
    in
    if unknown != [ ] then "${where}: unknown attribute `${k}`${suggest table k}; valid attributes are ${showList (attrNames table)}"
    else checkFields table "${where}: " v;

  # The message a wrapper throws for attrs (after "FUNCTION: "), or null.
  check = fn: attrs:
    let
      table = rows fn;
      unknown = filter (n: !(table ? ${n})) (attrNames attrs);
    in
    if !(isAttrs attrs) || attrs ? outPath then "takes an attribute set of arguments, not ${describe attrs}"
    else if unknown != [ ] then
      "unknown argument ${showList (map (n: "`${n}`${suggest table n}") unknown)}; valid arguments are ${showList (attrNames table)}"
    else checkFields table "" attrs;
in
{
  inherit known rows check;
  # The value of argument name: the caller's, else the table's default.
  arg = fn: attrs: name: attrs.${name} or (rows fn).${name}.default;
}
