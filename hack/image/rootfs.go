package main

import (
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// entry is one file, directory or symlink of a layer; path is relative to
// the image root, without a leading slash.
type entry struct {
	path   string
	mode   fs.FileMode // type bits and permissions
	link   string      // symlink target
	source string      // host file holding a regular file's content
	data   []byte      // content of a generated file (when source is empty)
}

// arch is what the builder needs to know about one architecture.
type arch struct {
	goarch  string
	triplet string // Debian multiarch directory
	machine elf.Machine
}

func archFor(goarch string) (arch, error) {
	switch goarch {
	case "amd64":
		return arch{goarch: goarch, triplet: "x86_64-linux-gnu", machine: elf.EM_X86_64}, nil
	case "arm64":
		return arch{goarch: goarch, triplet: "aarch64-linux-gnu", machine: elf.EM_AARCH64}, nil
	}
	return arch{}, fmt.Errorf("architecture %s: not supported (amd64, arm64)", goarch)
}

// iptablesLinks are the backend-specific command names kept from the Debian
// package (the wrapper and the test run them); every other front end
// (arptables, ebtables, translate, monitor) is left out.
func iptablesLinks() *regexp.Regexp {
	return regexp.MustCompile(`^ip6?tables-(legacy|nft)(-save|-restore)?$`)
}

// xtablesPlugins are the match and target extensions iptables loads with
// dlopen (not in DT_NEEDED): IPv4, IPv6 and shared ones.
func xtablesPlugins() *regexp.Regexp {
	return regexp.MustCompile(`^lib(xt|ipt|ip6t)_.*\.so$`)
}

// collector gathers files from an extracted Debian tree (root) together
// with the shared libraries and dynamic loader each ELF file needs.
type collector struct {
	root    string
	arch    arch
	entries map[string]entry
	queue   []string // ELF files whose dependencies are still to resolve
}

func newCollector(root string, a arch) *collector {
	return &collector{root: root, arch: a, entries: map[string]entry{}}
}

// add copies path p (relative to root) into the image, following symlinks
// (each hop is kept, so the loader finds libraries by their sonames).
func (c *collector) add(p string) error {
	for hops := 0; hops < 16; hops++ {
		if _, done := c.entries[p]; done {
			return nil
		}
		full := filepath.Join(c.root, p)
		info, err := os.Lstat(full)
		if err != nil {
			return fmt.Errorf("add /%s from the Debian packages: %w", p, err)
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(full)
			if err != nil {
				return fmt.Errorf("read link /%s: %w", p, err)
			}
			c.entries[p] = entry{path: p, mode: fs.ModeSymlink | 0o777, link: target}
			if strings.HasPrefix(target, "/") {
				p = strings.TrimPrefix(path.Clean(target), "/")
			} else {
				p = path.Join(path.Dir(p), target)
			}
		case info.Mode().IsRegular():
			c.entries[p] = entry{path: p, mode: info.Mode().Perm(), source: full}
			if isELF(full) {
				c.queue = append(c.queue, p)
			}
			return nil
		default:
			return fmt.Errorf("add /%s: unsupported file type %s", p, info.Mode().Type())
		}
	}
	return fmt.Errorf("add /%s: too many symlinks", p)
}

// resolve adds the loader and the DT_NEEDED libraries of every queued ELF
// file, transitively; a library missing from the tree is an error.
func (c *collector) resolve() error {
	for len(c.queue) > 0 {
		p := c.queue[0]
		c.queue = c.queue[1:]
		interp, needed, err := elfDeps(filepath.Join(c.root, p), c.arch.machine)
		if err != nil {
			return fmt.Errorf("read ELF /%s: %w", p, err)
		}
		if interp != "" {
			if err := c.add(strings.TrimPrefix(interp, "/")); err != nil {
				return fmt.Errorf("loader of /%s: %w", p, err)
			}
		}
		for _, lib := range needed {
			found, err := c.findLibrary(lib)
			if err != nil {
				return fmt.Errorf("library %s needed by /%s: %w", lib, p, err)
			}
			if err := c.add(found); err != nil {
				return err
			}
		}
	}
	return nil
}

// findLibrary looks a soname up where Debian's loader looks by default.
func (c *collector) findLibrary(soname string) (string, error) {
	for _, dir := range []string{"lib/" + c.arch.triplet, "usr/lib/" + c.arch.triplet, "lib", "usr/lib"} {
		p := path.Join(dir, soname)
		if _, err := os.Lstat(filepath.Join(c.root, p)); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("not in the extracted packages under %s: %w", c.root, fs.ErrNotExist)
}

// elfDeps returns an ELF file's program interpreter (empty for static
// files) and DT_NEEDED entries, after checking its machine.
func elfDeps(file string, machine elf.Machine) (string, []string, error) {
	f, err := elf.Open(file)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	if f.Machine != machine {
		return "", nil, fmt.Errorf("machine %s, want %s", f.Machine, machine)
	}
	var interp string
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			data := make([]byte, prog.Filesz)
			if _, err := prog.ReadAt(data, 0); err != nil {
				return "", nil, fmt.Errorf("read PT_INTERP: %w", err)
			}
			interp = strings.TrimRight(string(data), "\x00")
		}
	}
	needed, err := f.ImportedLibraries()
	if err != nil {
		return "", nil, fmt.Errorf("read DT_NEEDED: %w", err)
	}
	return interp, needed, nil
}

// userland collects iptables (both backends, their extensions and
// libraries) and the extra files (paths in root, such as usr/sbin/ipset, with
// the libraries they need) from the extracted Debian tree root.
func userland(root string, a arch, extra []string) ([]entry, error) {
	c := newCollector(root, a)
	for _, p := range append([]string{"usr/sbin/xtables-legacy-multi", "usr/sbin/xtables-nft-multi", "etc/protocols"}, extra...) {
		if err := c.add(p); err != nil {
			return nil, err
		}
	}
	if err := c.addMatching("usr/sbin", iptablesLinks()); err != nil {
		return nil, err
	}
	if err := c.addMatching("usr/lib/"+a.triplet+"/xtables", xtablesPlugins()); err != nil {
		return nil, err
	}
	if err := c.resolve(); err != nil {
		return nil, err
	}
	return c.sorted(), nil
}

// debianFiles collects the files (paths in root) with the shared libraries and the
// loader they need, transitively, from the extracted Debian tree root.
func debianFiles(root string, a arch, files []string) ([]entry, error) {
	c := newCollector(root, a)
	for _, p := range files {
		if err := c.add(p); err != nil {
			return nil, err
		}
	}
	if err := c.resolve(); err != nil {
		return nil, err
	}
	return c.sorted(), nil
}

// addMatching adds the entries of dir whose names match re.
func (c *collector) addMatching(dir string, re *regexp.Regexp) error {
	names, err := os.ReadDir(filepath.Join(c.root, dir))
	if err != nil {
		return fmt.Errorf("list /%s in the Debian packages: %w", dir, err)
	}
	n := 0
	for _, e := range names {
		if re.MatchString(e.Name()) {
			if err := c.add(path.Join(dir, e.Name())); err != nil {
				return err
			}
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("no file matching %s in /%s: %w", re, dir, fs.ErrNotExist)
	}
	return nil
}

// isELF reports whether a file starts with the ELF magic number.
func isELF(file string) bool {
	f, err := os.Open(file)
	if err != nil {
		return false
	}
	defer f.Close()
	magic := make([]byte, 4)
	_, err = io.ReadFull(f, magic)
	return err == nil && string(magic) == elf.ELFMAG
}

func (c *collector) sorted() []entry {
	out := make([]entry, 0, len(c.entries))
	for _, e := range c.entries {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}
