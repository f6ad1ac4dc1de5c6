{
  description = "ocitools: turn Nix closures into OCI runtime bundles and images, and run them";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system:
        f (import nixpkgs { inherit system; overlays = [ self.overlays.default ]; }));
    in
    {
      # pkgs.ocitools, and pkgs.ociTools.buildContainer replaced by ours.
      overlays.default = import ./nix/overlay.nix;

      # ociTools for any ocitools build: lib.ociTools { ocitools = ...; system = ...; }
      # gives buildContainer, buildImage, buildLayer, buildIndex, toArchive, ...
      lib.ociTools = import ./nix/oci-tools.nix;

      packages = forAllSystems (pkgs: {
        default = pkgs.ocitools;
        ocitools = pkgs.ocitools;
        # `nix run .#example` builds this bundle and runs it (rootless as a user).
        example = pkgs.ociTools.buildContainer {
          args = [ "${pkgs.hello}/bin/hello" "--greeting" "hi from ${pkgs.hello}" ];
          readonly = true;
        };
        # An OCI image layout of the same program: `nix build .#example-image`;
        # `nix run .#example-image.copyTo -- oci:DIR` (or docker://REGISTRY/REPO:TAG,
        # docker-daemon:NAME:TAG) copies it; copyToRegistry, copyToDockerDaemon and
        # copyToPodman too; .archive is the one file `docker load` reads.
        example-image = pkgs.ociTools.buildImage {
          name = "hello";
          tag = "latest";
          config.Entrypoint = [ "${pkgs.hello}/bin/hello" ];
        };
      });

      checks = forAllSystems (pkgs: {
        ocitools = pkgs.ocitools;
        # The seed's example, and the shape nixpkgs' version refuses.
        bash-bundle = pkgs.ociTools.buildContainer { args = [ "${pkgs.bash}/bin/bash" ]; };
        hello-bundle = self.packages.${pkgs.system}.example;
        bind-bundle = pkgs.ociTools.buildContainer {
          args = [ "${pkgs.hello}/bin/hello" ];
          storeMode = "bind";
        };
        hello-image = self.packages.${pkgs.system}.example-image;
      });
    };
}
