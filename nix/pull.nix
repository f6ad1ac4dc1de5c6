# Base images from a registry, written with builtins only (docs/registry.md):
#
#   pullImage: one fixed-output derivation keyed by the image's digest, whose
#     output (an OCI image layout) has the recursive hash given;
#   pullImageFromLock: a lock file written by `ocitools lock`, each blob its
#     own fixed-output derivation (hash = the blob's digest), so a new version
#     of the image downloads only the blobs that changed.
#
# Both fetch with `ocitools pull`'s client (every digest and size checked) and
# give a layout that buildImage's fromImage takes. Fixed-output derivations
# reach the network inside Nix's sandbox; credentials come from
# REGISTRY_AUTH_FILE when the sandbox lets that file in (extra-sandbox-paths).
{ ocitools, system ? builtins.currentSystem, hostSystem ? system }:

let
  inherit (builtins) filter fromJSON head isAttrs isPath isString length match readFile split substring;
  inherit (import ./lib.nix) builderOf ociDerivation describe repoBaseName;
  table = import ./table.nix;

  builder = builderOf ocitools;

  # Arguments are checked against tables.pullImage and pullImageFromLock of
  # options/known.json (nix/table.nix).
  checked = fn: attrs: let e = table.check fn attrs; in e == null || throw "${fn}: ${e}";

  # The host's platform, as GOOS/GOARCH.
  hostArch = let a = head (split "-" hostSystem); in table.known.archAliases.${a} or a;
  defaultPlatform = "linux/${hostArch}";

  parsePlatform = p:
    let m = match "([a-z0-9]+)/([a-z0-9]+)(/([a-z0-9]+))?" p; in
    { os = builtins.elemAt m 0; architecture = builtins.elemAt m 1; }
    // (if builtins.elemAt m 3 == null then { } else { variant = builtins.elemAt m 3; });

  digestRe = "sha256:[0-9a-f]{64}";

  # The registry flags a fetch gets.
  fetchFlags = attrs:
    (if attrs.plainHTTP or false then [ "--plain-http" ] else [ ])
    ++ (if attrs ? caFile && attrs.caFile != null then [ "--ca" "${attrs.caFile}" ] else [ ]);

  fetchEnv = {
    # No blob location record in the sandbox; proxies and the auth file pass through.
    OCITOOLS_BLOB_CACHE = "-";
    impureEnvVars = [ "REGISTRY_AUTH_FILE" "http_proxy" "https_proxy" "HTTP_PROXY" "HTTPS_PROXY" "no_proxy" "NO_PROXY" ];
  };

  pullImage = attrs:
    let
      fn = "pullImage";
      inherit (attrs) imageName imageDigest;
      tag = attrs.tag or null;
      platformStr = attrs.platform or defaultPlatform;
      platform = parsePlatform platformStr;
      hashAttrs =
        if attrs ? hash then { outputHash = attrs.hash; outputHashAlgo = "sha256"; }
        else if attrs ? sha256 then { outputHash = attrs.sha256; outputHashAlgo = "sha256"; }
        else throw "${fn}: give `hash` (an SRI hash such as \"sha256-...\"; build once with hash = \"\" to be told it) or `sha256`";
      ref = imageName + (if tag == null then "" else ":${tag}") + "@${imageDigest}";
    in
    assert checked fn attrs;
    ociDerivation ({
      name = attrs.name or "${repoBaseName imageName}-oci-base";
      inherit system builder;
      # --sbom=false: a fixed output must not depend on what is attached to
      # the image later.
      args = [ "pull" "--quiet" "--sbom=false" "--platform" platformStr ] ++ fetchFlags attrs ++ [ ref (builtins.placeholder "out") ];
      outputHashMode = "recursive";
    } // hashAttrs // fetchEnv) // {
      inherit imageName imageDigest;
      imageTag = tag;
      ociPlatform = platform;
    };

  # pullImageFromLock ./image.lock.json, or { lockFile; plainHTTP ?; caFile ?; name ?; }.
  pullImageFromLock = arg:
    let
      fn = "pullImageFromLock";
      attrs = if isAttrs arg && !(arg ? outPath) then arg else { lockFile = arg; };
      inherit (attrs) lockFile;
      lock = fromJSON (readFile lockFile);
      lockInStore = if isPath lockFile then builtins.path { path = lockFile; name = "oci-image.lock.json"; } else lockFile;
      blob = b:
        let hex = substring 7 64 b.digest; in
        assert match digestRe b.digest != null || throw "${fn}: ${toString lockFile}: blob digest ${describe b.digest} is not sha256:HEX";
        ociDerivation ({
          # The name holds only the digest: every image sharing a blob shares its store path.
          name = "oci-blob-${substring 0 32 hex}";
          inherit system builder;
          args = [ "fetch-blob" ] ++ fetchFlags attrs ++ [ "${lock.imageName}@${b.digest}" (toString b.size) (builtins.placeholder "out") ];
          outputHashMode = "flat";
          outputHashAlgo = "sha256";
          outputHash = hex;
        } // fetchEnv);
      blobs = map (b: "${b.digest}=${blob b}") lock.blobs;
    in
    assert checked fn attrs;
    assert (lock.version or 0) == 1 || throw "${fn}: ${toString lockFile} is not a version 1 lock file written by `ocitools lock`";
    ociDerivation {
      name = attrs.name or "${repoBaseName lock.imageName}-oci-base";
      inherit system builder;
      args = [ "lock-layout" "${lockInStore}" (builtins.placeholder "out") ] ++ blobs;
    } // {
      inherit (lock) imageName imageDigest;
      imageTag = lock.tag or null;
      ociPlatform = lock.platform;
      # Known at evaluation: buildImage counts them against maxLayers.
      ociLayerCount = length lock.blobs - 1;
    };
in
{
  inherit pullImage pullImageFromLock;
}
