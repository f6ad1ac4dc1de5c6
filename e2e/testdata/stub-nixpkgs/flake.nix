# A stand-in for nixpkgs, just large enough to evaluate and build ocitools'
# flake on a machine that cannot fetch nixpkgs. Used with --override-input.
{
  outputs = { self }: {
    lib = import ./lib.nix;
  };
}
