package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/ocitools/ocitools/image/layout"
	"github.com/ocitools/ocitools/registry"
	"github.com/ocitools/ocitools/sbom"
)

// A copy program (nix/registry.nix: image.copyToRegistry and friends) is a
// store path holding bin/ACTION, a link to this program, and
// share/ocitools/copy.json naming the image and its name and tag. Run under
// that link, ocitools does ACTION (see runCopy).
const copyProgramFile = "share/ocitools/copy.json"

type copyProgram struct {
	Action string `json:"action"` // copyToRegistry, copyTo, copyToDockerDaemon, copyToPodman
	Image  string `json:"image"`  // the image layout (store path)
	Name   string `json:"name"`   // the image's name (registry/repository)
	Tag    string `json:"tag"`    // "" when the layout's ref.name is the tag
}

var copyActions = map[string]string{
	"copyToRegistry":     "push the image to its name:tag",
	"copyTo":             "copy the image to the destination given as the last argument",
	"copyToDockerDaemon": "load the image into the docker daemon",
	"copyToPodman":       "load the image into podman's storage",
}

func copyProgramCommand() *cli.Command {
	return &cli.Command{
		Name:   "copy-program",
		Usage:  "the builder of nix/registry.nix's copy programs (bin/ACTION linking to ocitools, and copy.json)",
		Hidden: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Required: true},
			&cli.StringFlag{Name: "action", Required: true},
			&cli.StringFlag{Name: "image", Required: true},
			&cli.StringFlag{Name: "name"},
			&cli.StringFlag{Name: "tag"},
		},
		Action: func(c *cli.Context) error {
			p := copyProgram{Action: c.String("action"), Image: c.String("image"), Name: c.String("name"), Tag: c.String("tag")}
			if _, ok := copyActions[p.Action]; !ok {
				return fmt.Errorf("copy-program: unknown action %q", p.Action)
			}
			if _, err := registry.OpenLayout(p.Image); err != nil {
				return fmt.Errorf("copy-program: %w", err)
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			out := c.String("out")
			if err := os.MkdirAll(filepath.Join(out, "bin"), 0o755); err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Join(out, filepath.Dir(copyProgramFile)), 0o755); err != nil {
				return err
			}
			data, _ := json.MarshalIndent(p, "", "  ")
			if err := os.WriteFile(filepath.Join(out, copyProgramFile), append(data, '\n'), 0o444); err != nil {
				return err
			}
			return os.Symlink(self, filepath.Join(out, "bin", p.Action))
		},
	}
}

// copyMulticall recognises argv[0] as a copy program's bin/ACTION.
func copyMulticall(argv []string) (*copyProgram, bool) {
	if len(argv) == 0 || filepath.Base(argv[0]) == "ocitools" {
		return nil, false
	}
	self := argv[0]
	if !strings.Contains(self, "/") {
		p, err := exec.LookPath(self)
		if err != nil {
			return nil, false
		}
		self = p
	}
	abs, err := filepath.Abs(self)
	if err != nil || filepath.Base(filepath.Dir(abs)) != "bin" {
		return nil, false
	}
	data, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(abs)), copyProgramFile))
	if err != nil {
		return nil, false
	}
	var p copyProgram
	if json.Unmarshal(data, &p) != nil || p.Action != filepath.Base(abs) {
		return nil, false
	}
	return &p, true
}

// runCopy does a copy program's action; args are what `nix run X --` passed.
func runCopy(p *copyProgram, args []string) error {
	tag := p.Tag
	if tag == "" {
		l, err := registry.OpenLayout(p.Image)
		if err != nil {
			return err
		}
		tag = registry.PushTag(l, registry.Ref{})
	}
	if wantsHelp(args) {
		fmt.Printf("%s: %s (%s:%s from %s)\n", p.Action, copyActions[p.Action], p.Name, tag, p.Image)
		switch p.Action {
		case "copyToRegistry":
			fmt.Println("usage: copyToRegistry [PUSH FLAGS] (ocitools push --help lists them)")
		case "copyTo":
			fmt.Println("usage: copyTo [PUSH FLAGS] DEST, DEST = [docker://]REGISTRY/REPO[:TAG] | oci:DIR[:TAG] | docker-daemon:[NAME:TAG]")
		default:
			fmt.Printf("usage: %s [NAME:TAG]\n", p.Action)
		}
		return nil
	}
	named := p.Name + ":" + tag
	switch p.Action {
	case "copyToRegistry":
		if _, err := registry.ParseRef(named); err != nil {
			return fmt.Errorf("copyToRegistry: the image's name %q has no registry host (%v): give buildImage a name such as \"registry.example/app\", or use copyTo with a destination", p.Name, err)
		}
		return pushVia(args, p.Image, named)
	case "copyTo":
		if len(args) == 0 {
			return cli.Exit("copyTo: give the destination: [docker://]REGISTRY/REPOSITORY[:TAG], oci:DIR[:TAG] or docker-daemon:[NAME:TAG]", 2)
		}
		dest, flags := args[len(args)-1], args[:len(args)-1]
		switch {
		case strings.HasPrefix(dest, "oci:"):
			dir, t, _ := strings.Cut(strings.TrimPrefix(dest, "oci:"), ":")
			if t == "" {
				t = tag
			}
			// The SBOM beside the layout goes with it, read (and checked)
			// before anything is written.
			bom, err := sbom.ReadFile(p.Image)
			if err != nil && !errors.Is(err, sbom.ErrNoSBOM) {
				return fmt.Errorf("copyTo %s: %w", dest, err)
			}
			if err := layout.Copy(p.Image, dir, t); err != nil {
				return fmt.Errorf("copyTo %s: %w", dest, err)
			}
			if bom != nil {
				if err := os.WriteFile(filepath.Join(dir, sbom.CycloneDXFile), bom, 0o444); err != nil {
					return fmt.Errorf("copyTo %s: %w", dest, err)
				}
			}
			fmt.Printf("copied %s to %s (tag %s)\n", p.Image, dir, t)
			return nil
		case strings.HasPrefix(dest, "docker-daemon:"):
			n := strings.TrimPrefix(dest, "docker-daemon:")
			if n == "" {
				n = named
			}
			return loadInto("docker", p.Image, tag, n)
		}
		return pushVia(flags, p.Image, dest)
	case "copyToDockerDaemon", "copyToPodman":
		tool := map[string]string{"copyToDockerDaemon": "docker", "copyToPodman": "podman"}[p.Action]
		if len(args) > 1 {
			return cli.Exit(p.Action+": takes at most one argument, the NAME:TAG to load the image as", 2)
		}
		if len(args) == 1 {
			named = args[0]
		}
		return loadInto(tool, p.Image, tag, named)
	}
	return fmt.Errorf("unknown copy action %q", p.Action)
}

func wantsHelp(args []string) bool {
	return len(args) == 1 && (args[0] == "--help" || args[0] == "-h")
}

// pushVia runs `ocitools push FLAGS IMAGE DEST` (flags come first for the CLI).
func pushVia(flags []string, image, dest string) error {
	argv := append(append([]string{"ocitools", "push"}, flags...), image, dest)
	return newApp().Run(argv)
}

// loadInto loads the image into docker or podman. With an `ocitools archive`
// command (issue 10's docker-archive writer) the stream goes to `TOOL load`;
// without it, skopeo copies into docker-daemon:, or podman pulls the oci:
// layout itself.
func loadInto(tool, image, ref, named string) error {
	bin, err := exec.LookPath(tool)
	if err != nil {
		return fmt.Errorf("%s is not installed (or not on PATH): loading the image into %s needs it", tool, tool)
	}
	l, err := registry.OpenLayout(image)
	if err != nil {
		return err
	}
	single := len(l.Index.Manifests) == 1 && l.Index.Manifests[0].MediaType == "application/vnd.oci.image.manifest.v1+json"
	name, tag := splitNameTag(named)
	if archive := newApp().Command("archive"); archive != nil && single {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		gen := exec.Command(self, "archive", "--name", name, "--tag", tag, image, "-")
		load := exec.Command(bin, "load")
		pipe, err := gen.StdoutPipe()
		if err != nil {
			return err
		}
		load.Stdin = pipe
		gen.Stderr, load.Stdout, load.Stderr = os.Stderr, os.Stdout, os.Stderr
		if err := gen.Start(); err != nil {
			return err
		}
		lerr := load.Run()
		gerr := gen.Wait()
		if gerr != nil {
			return fmt.Errorf("ocitools archive %s: %w", image, gerr)
		}
		if lerr != nil {
			return fmt.Errorf("%s load: %w", tool, lerr)
		}
		return nil
	}
	src := "oci:" + image + ":" + ref
	if tool == "docker" {
		skopeo, err := exec.LookPath("skopeo")
		if err != nil {
			return errors.New("loading into docker needs skopeo (or an ocitools with the archive command): skopeo is not installed")
		}
		args := []string{"copy", src, "docker-daemon:" + named}
		if h := os.Getenv("DOCKER_HOST"); h != "" {
			args = append(args, "--dest-daemon-host", h)
		}
		return runTool(skopeo, args...)
	}
	out, err := exec.Command(bin, "pull", "-q", src).Output()
	if err != nil {
		return fmt.Errorf("podman pull %s: %w", src, stderrOf(err))
	}
	id := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(id, '\n'); i >= 0 {
		id = id[i+1:]
	}
	// podman names an oci: pull after its path; the image's own name replaces it.
	_ = exec.Command(bin, "untag", id).Run()
	if err := runTool(bin, "tag", id, named); err != nil {
		return err
	}
	fmt.Printf("loaded %s into podman as %s\n", image, named)
	return nil
}

func runTool(bin string, args ...string) error {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w", filepath.Base(bin), strings.Join(args, " "), err)
	}
	return nil
}

func stderrOf(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(string(ee.Stderr)))
	}
	return err
}

// splitNameTag splits NAME:TAG at the colon after the last slash (a registry
// host's port comes before it); no tag gives "latest".
func splitNameTag(named string) (string, string) {
	if i := strings.LastIndexByte(named, ':'); i > strings.LastIndexByte(named, '/') {
		return named[:i], named[i+1:]
	}
	return named, "latest"
}
