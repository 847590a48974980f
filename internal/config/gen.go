package config

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// This file generates the configuration of a whole cluster from its member list: one seed-format
// config per node, each written by ForMember and Render, the same code path as dlock dev and the test
// clusters, so every file lists the same members and reads back as exactly what was generated.
// `dlock config gen` drives it; genfiles.go adds the per-node Docker Compose and systemd files and
// genkube.go the Kubernetes manifest.

// MembersMax is the most members a generated cluster may have, the bound Validate puts on id.peer_id.
const MembersMax = peersMax + 1

// ParseMember reads one member in the form "ID=PEER_HOST:PORT,CLIENT_HOST:PORT", e.g.
// "1=10.0.0.1:14005,10.0.0.1:24005": the node's id, the address its peers dial for Raft, and the
// address clients dial. It checks only the form; CheckMembers checks the values.
func ParseMember(spec string) (Member, error) {
	const form = "want ID=PEER_HOST:PORT,CLIENT_HOST:PORT, e.g. 1=10.0.0.1:14005,10.0.0.1:24005"
	idText, addrs, ok := strings.Cut(strings.TrimSpace(spec), "=")
	if !ok {
		return Member{}, fmt.Errorf("node %q: no '='; %s", spec, form)
	}
	peer, client, ok := strings.Cut(addrs, ",")
	if !ok || strings.Contains(client, ",") {
		return Member{}, fmt.Errorf("node %q: want two addresses separated by one ','; %s", spec, form)
	}
	id, err := strconv.ParseUint(strings.TrimSpace(idText), 10, 32)
	if err != nil || id == 0 {
		return Member{}, fmt.Errorf("node %q: id %q is not a number in 1..4294967295", spec, idText)
	}
	return Member{ID: uint32(id), PeerAddress: strings.TrimSpace(peer), ClientAddress: strings.TrimSpace(client)}, nil
}

// ParseMembers reads a nodes file: one member per line in ParseMember's form, with blank lines and
// lines starting with '#' ignored. Every malformed line is reported, each with its line number.
func ParseMembers(r io.Reader) ([]Member, error) {
	var ms []Member
	var errs []error
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		m, err := ParseMember(text)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", line, err))
			continue
		}
		ms = append(ms, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read nodes: %w", err)
	}
	return ms, errors.Join(errs...)
}

// CheckMembers checks a cluster's member list before anything is generated from it: 1 to MembersMax
// members, ids not 0 and not repeated, every address host:port with a host others can dial (not
// empty, not 0.0.0.0 or ::), and all 2N addresses distinct. It returns every problem, joined, each
// naming the node and the address.
func CheckMembers(ms []Member) error {
	if len(ms) == 0 {
		return errors.New("no nodes given; a cluster needs 1 to 9 (3 or 5 for fault tolerance)")
	}
	var errs []error
	if len(ms) > MembersMax {
		errs = append(errs, fmt.Errorf("%d nodes given; a cluster has at most %d", len(ms), MembersMax))
	}
	ids := make(map[uint32]bool, len(ms))
	addrs := make(map[string]string, 2*len(ms))
	for _, m := range ms {
		if m.ID == 0 {
			errs = append(errs, errors.New("node id 0 is reserved; use 1..4294967295"))
		} else if ids[m.ID] {
			// Its addresses would be reported as clashing with "node N" itself: the id is the problem.
			errs = append(errs, fmt.Errorf("node id %d is given twice; every node needs its own id", m.ID))
			continue
		}
		ids[m.ID] = true
		for _, a := range []struct{ what, addr string }{{"peer", m.PeerAddress}, {"client", m.ClientAddress}} {
			who := fmt.Sprintf("node %d %s address", m.ID, a.what)
			if err := checkDialable(a.addr); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", who, err))
				continue
			}
			if prev, dup := addrs[a.addr]; dup {
				errs = append(errs, fmt.Errorf("%s %q is also the %s; every address must be distinct", who, a.addr, prev))
				continue
			}
			addrs[a.addr] = who
		}
	}
	return errors.Join(errs...)
}

// checkDialable checks addr with the rules Validate applies to a peer_address, plus that its host is
// not the unspecified address, which no other node could dial.
func checkDialable(addr string) error {
	var p problems
	checkAddress(&p, "", addr, true)
	if len(p) > 0 {
		return p[0]
	}
	host, _, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return fmt.Errorf("%q means every interface, which no other node can dial; give the machine's address", addr)
	}
	return nil
}

// GenBase returns the config every generated node starts from, before ForMember gives it its id and
// addresses: Default's parameters and limits, logs at Info to standard error (what Docker, systemd
// and Kubernetes collect) and the seed's storage layout, the Raft log at ./var/persistence.db under
// the working directory (/data in the image, /var/lib/dlock under the generated systemd unit).
func GenBase() *Config {
	c := Default()
	c.Storage = StorageConfig{LogLevel: "Info", EntryStoragePath: "./var/persistence.db"}
	return c
}

// MemberConfig returns the config of member self of members, built from base (GenBase if nil): its
// parameters, storage and limits, with id and network from ForMember. With listenAll the node
// listens on every interface (0.0.0.0 with its ports) and advertises its peer address, for machines
// and pods whose address is not on an interface they can bind, or not known before they start.
// The result is validated.
func MemberConfig(base *Config, self uint32, members []Member, listenAll bool) (*Config, error) {
	if base == nil {
		base = GenBase()
	}
	c := base.ForMember(self, members)
	if listenAll {
		c.Network.AdvertiseAddress = c.Network.SelfAddress
		c.Network.SelfAddress = anyHost(c.Network.SelfAddress)
		c.Network.SelfCliAddress = anyHost(c.Network.SelfCliAddress)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config for node %d: %w", self, err)
	}
	return c, nil
}

// anyHost replaces addr's host with 0.0.0.0, keeping its port.
func anyHost(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr // Validate reports it
	}
	return net.JoinHostPort("0.0.0.0", port)
}

// renderMember renders member self's config with a header naming the generator and the node.
func renderMember(base *Config, self uint32, members []Member, listenAll bool) ([]byte, error) {
	c, err := MemberConfig(base, self, members, listenAll)
	if err != nil {
		return nil, err
	}
	text, err := c.Render()
	if err != nil {
		return nil, fmt.Errorf("config for node %d: %w", self, err)
	}
	head := fmt.Sprintf("# dlock node %d of a %d-node cluster, written by `dlock config gen`.\n"+
		"# Every node's file lists the same members; regenerate them together rather than edit one.\n",
		self, len(members))
	return append([]byte(head), text...), nil
}

// sortedMembers returns a copy of ms sorted by id, the order Members reports.
func sortedMembers(ms []Member) []Member {
	out := slices.Clone(ms)
	slices.SortFunc(out, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// GenFile is one file a generator produced: its path relative to the output directory, its content
// and its permissions.
type GenFile struct {
	Path string
	Data []byte
	Mode os.FileMode
}

// Generator produces a deployment's files in memory; Machines and Kubernetes are Generators.
type Generator interface {
	Files() ([]GenFile, error)
}

// Generate writes g's files under dir, as WriteFiles does. If g reports a problem with its input, or
// a file exists and overwrite is false, it writes nothing and returns every problem, joined.
func Generate(dir string, g Generator, overwrite bool) error {
	files, err := g.Files()
	if err != nil {
		return err
	}
	return WriteFiles(dir, files, overwrite)
}

// WriteFiles writes files under dir, creating directories as needed. Unless overwrite is set, it
// first checks that none of the files exists and, if one does, writes nothing and names it. A file
// path must be relative and stay inside dir.
func WriteFiles(dir string, files []GenFile, overwrite bool) error {
	var errs []error
	for _, f := range files {
		if !filepath.IsLocal(f.Path) {
			errs = append(errs, fmt.Errorf("file %q is not a path inside the output directory", f.Path))
			continue
		}
		p := filepath.Join(dir, f.Path)
		if _, err := os.Lstat(p); err == nil && !overwrite {
			errs = append(errs, fmt.Errorf("%s exists; remove it or pass --force to overwrite", p))
		} else if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("check %s: %w", p, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(dir, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("create %s: %w", filepath.Dir(p), err)
		}
		if err := os.WriteFile(p, f.Data, f.Mode); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		// WriteFile keeps an existing file's mode and applies the umask to a new one.
		if err := os.Chmod(p, f.Mode); err != nil {
			return fmt.Errorf("chmod %s: %w", p, err)
		}
	}
	return nil
}
