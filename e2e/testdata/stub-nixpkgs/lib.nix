# The few nixpkgs lib functions the flake and nix/package.nix use.
{
  genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
  cleanSource = src: src;
  licenses.asl20 = { spdxId = "Apache-2.0"; };
  platforms.linux = [ "x86_64-linux" "aarch64-linux" ];
}
