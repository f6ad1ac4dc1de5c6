# One benchmark build: a contender materialising a workload closure.
# Every path argument is a store path string (from `nix-store --add`), turned
# into a dependency with builtins.storePath, so evaluation hashes nothing.
{ repo, ocitools, timeit, busybox, workload, contender }:

let
  system = builtins.currentSystem;
  sp = builtins.storePath;
  bb = sp busybox;
  sh = "${bb}/bin/sh";
  paths = map sp workload;

  # The root that ties the workload together: its output names every path, so
  # its closure is the whole workload.
  root = derivation {
    name = "bench-workload-root";
    inherit system;
    builder = sh;
    args = [ "-c" "echo ${bb} ${toString paths} > $out" ];
  };

  # What the container would run; every contender gets the same closure.
  args = [ "${bb}/bin/sh" "-c" "cat ${root}" ];

  # The seed's pipeline (nixpkgs ociTools.buildContainer): the closure list from
  # exportReferencesGraph, then `xargs tar c | tar -x`. GNU tar, xargs and cp
  # come from the host through extra-sandbox-paths: busybox tar cannot extract
  # read-only store directories as the unprivileged build user.
  shellBuild = name: script: derivation {
    inherit name system;
    builder = "${sp timeit}/bin/timeit";
    args = [ sh "-c" ''
      set -e
      export PATH=${bb}/bin
      # exportReferencesGraph's file: path, deriver, count, references...
      awk 's==0{print; s=1; next} s==1{s=2; next} s==2{n=$1; s=(n>0?3:0); next} s==3{if(--n==0)s=0}' closure > closure-list
      mkdir -p $out/rootfs/proc $out/rootfs/sys $out/rootfs/dev $out/rootfs/nix/store
      echo '{"ociVersion":"1.0.0"}' > $out/config.json
      ${script}
    '' ];
    exportReferencesGraph = [ "closure" root ];
  };

  contenders = {
    seed = shellBuild "bench-seed" "/usr/bin/xargs /usr/bin/tar c < closure-list | /usr/bin/tar -xC $out/rootfs";
    cp-a = shellBuild "bench-cp-a" "/usr/bin/xargs /usr/bin/cp -a -t $out/rootfs/nix/store < closure-list";
    copy-verify = ours { storeMode = "copy"; verify = true; };
    copy = ours { storeMode = "copy"; verify = false; };
    bind = ours { storeMode = "bind"; };
  };

  ociTools = import (repo + "/nix/oci-tools.nix") { ocitools = sp ocitools; };
  ours = opts: ociTools.buildContainer ({
    inherit args;
    name = "bench-ours-${opts.storeMode}";
  } // opts);
in
contenders.${contender}
