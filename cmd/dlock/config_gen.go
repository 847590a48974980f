package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dlock-raft/dlock/internal/cli"
	"github.com/dlock-raft/dlock/internal/config"
)

// configCommand is the `dlock config` group.
func configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Generate node configurations for a cluster",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cli.UsageError(fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath()))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(configGenCommand())
	return cmd
}

type genOptions struct {
	nodes     []string
	nodesFile string
	out       string
	base      string
	listenAll bool
	image     string
	binary    string
	force     bool

	kubernetes bool
	kube       config.Kubernetes
}

// kubeOnlyFlags may only be given with --kubernetes; machineOnlyFlags only without it.
var (
	kubeOnlyFlags    = []string{"replicas", "name", "namespace", "cluster-domain", "storage-size"}
	machineOnlyFlags = []string{"node", "nodes-file", "listen-all", "binary"}
)

func configGenCommand() *cobra.Command {
	o := genOptions{}
	cmd := &cobra.Command{
		Use:   "gen (--node ID=PEER,CLIENT ... | --nodes-file FILE | --kubernetes) [--out DIR]",
		Short: "Write every node's config, Compose file and systemd unit, or a Kubernetes manifest",
		Long: `Write the files a cluster needs, one seed-format config per node, all
listing the same members.

For machines (one node per machine), name every node once:

  dlock config gen --out deploy-prod \
    --node 1=10.0.0.1:14005,10.0.0.1:24005 \
    --node 2=10.0.0.2:14005,10.0.0.2:24005 \
    --node 3=10.0.0.3:14005,10.0.0.3:24005

Each node is ID=PEER_HOST:PORT,CLIENT_HOST:PORT: its id (1..4294967295),
the address its peers dial for Raft, and the address clients dial.
--nodes-file reads the same form, one node per line (# starts a comment).
For each node it writes nodeID/config.yaml, nodeID/docker-compose.yaml (runs
the image on the host's network) and nodeID/dlock.service (a systemd unit),
and nodes.txt, the node list. Copy nodeID/ to that machine and start it with
either file.

For Kubernetes, --kubernetes writes NAME.yaml: a StatefulSet of --replicas
pods, a headless Service, a client Service, a PodDisruptionBudget and a
ConfigMap with one config per pod.

Nothing is written if any input is wrong, or if a file exists (--force
overwrites). docs/operations.md walks through both.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runConfigGen(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&o.nodes, "node", nil, "a node as ID=PEER_HOST:PORT,CLIENT_HOST:PORT; repeat once per node")
	f.StringVar(&o.nodesFile, "nodes-file", "", "read the nodes from FILE, one ID=PEER_HOST:PORT,CLIENT_HOST:PORT per line")
	f.StringVar(&o.out, "out", "dlock-cluster", "directory to write into (created if missing)")
	f.StringVar(&o.base, "base", "", "config file whose parameters, storage and limits every node gets (its id and network are replaced); default: the built-in defaults, data in ./var")
	f.BoolVar(&o.listenAll, "listen-all", false, "nodes listen on 0.0.0.0 and advertise their peer address (NAT, cloud VMs)")
	f.StringVar(&o.image, "image", "dlock:dev", "image the Compose files or the StatefulSet run")
	f.StringVar(&o.binary, "binary", "/usr/local/bin/dlock", "path of the dlock binary in the systemd units")
	f.BoolVar(&o.force, "force", false, "overwrite files that exist")
	f.BoolVar(&o.kubernetes, "kubernetes", false, "write a Kubernetes manifest instead of per-machine files")
	f.IntVar(&o.kube.Replicas, "replicas", 3, "Kubernetes: number of nodes (pods)")
	f.StringVar(&o.kube.Name, "name", "dlock", "Kubernetes: name of the StatefulSet, its Services and pods")
	f.StringVar(&o.kube.Namespace, "namespace", "default", "Kubernetes: namespace")
	f.StringVar(&o.kube.ClusterDomain, "cluster-domain", "cluster.local", "Kubernetes: the cluster's DNS domain")
	f.StringVar(&o.kube.StorageSize, "storage-size", "1Gi", "Kubernetes: each pod's volume claim")
	return cmd
}

func runConfigGen(cmd *cobra.Command, o genOptions) error {
	if err := checkGenFlags(cmd, o); err != nil {
		return cli.UsageError(err)
	}
	var base *config.Config
	if o.base != "" {
		b, err := config.Load(o.base)
		if err != nil {
			return cli.UsageError(genError("--base", err))
		}
		base = b
	}
	out := cmd.OutOrStdout()
	if o.kubernetes {
		o.kube.Base, o.kube.Image = base, o.image
		if err := config.Generate(o.out, o.kube, o.force); err != nil {
			return genFailed(err)
		}
		printKubeSummary(out, o)
		return nil
	}
	members, err := genMembers(o)
	if err != nil {
		return cli.UsageError(genError("", err))
	}
	m := config.Machines{Base: base, Members: members, ListenAll: o.listenAll, Image: o.image, Binary: o.binary}
	if err := config.Generate(o.out, m, o.force); err != nil {
		return genFailed(err)
	}
	printMachinesSummary(out, cmd.ErrOrStderr(), o.out, members)
	return nil
}

// genFailed is Generate's error for the user: a usage error (exit 2) for bad input or a file in the
// way, a plain error (exit 1) when the file system failed.
func genFailed(err error) error {
	var pathErr *fs.PathError
	if errors.As(err, &pathErr) {
		return genError("", err)
	}
	return cli.UsageError(genError("", err))
}

func checkGenFlags(cmd *cobra.Command, o genOptions) error {
	if o.out == "" {
		return errors.New("dlock: config gen: --out is empty")
	}
	mode, other := "without --kubernetes", kubeOnlyFlags
	if o.kubernetes {
		mode, other = "with --kubernetes", machineOnlyFlags
	}
	for _, name := range other {
		if cmd.Flags().Changed(name) {
			return fmt.Errorf("dlock: config gen: --%s does not apply %s", name, mode)
		}
	}
	return nil
}

// genMembers collects the nodes from --node flags and --nodes-file.
func genMembers(o genOptions) ([]config.Member, error) {
	var members []config.Member
	var errs []error
	for _, spec := range o.nodes {
		m, err := config.ParseMember(spec)
		if err != nil {
			errs = append(errs, fmt.Errorf("--node: %w", err))
			continue
		}
		members = append(members, m)
	}
	if o.nodesFile != "" {
		f, err := os.Open(o.nodesFile)
		if err != nil {
			return nil, fmt.Errorf("--nodes-file: %w", err)
		}
		defer f.Close()
		ms, err := config.ParseMembers(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("--nodes-file %s: %w", o.nodesFile, err))
		}
		members = append(members, ms...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(members) == 0 {
		return nil, errors.New("no nodes given: pass --node ID=PEER_HOST:PORT,CLIENT_HOST:PORT once per node, or --nodes-file")
	}
	return members, nil
}

// genError formats every problem of a joined error on its own line, after a header saying that
// nothing was written.
func genError(what string, err error) error {
	var lines []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, inner := range j.Unwrap() {
				walk(inner)
			}
			return
		}
		lines = append(lines, e.Error())
	}
	walk(err)
	head := "dlock: config gen"
	if what != "" {
		head += ": " + what
	}
	if len(lines) == 1 {
		return fmt.Errorf("%s: %w (nothing written)", head, err)
	}
	return fmt.Errorf("%s: %d problems, nothing written:\n  %s", head, len(lines), strings.Join(lines, "\n  "))
}

func printMachinesSummary(out, warn io.Writer, dir string, members []config.Member) {
	if n := len(members); n > 1 && n%2 == 0 {
		fmt.Fprintf(warn, "note: %d nodes tolerate as many failed nodes (%d) as %d do; an odd number is usual\n", n, (n-1)/2, n-1)
	}
	fmt.Fprintf(out, "dlock config gen: %d node(s) written to %s\n", len(members), dir)
	var eps []string
	for _, m := range sortedByID(members) {
		fmt.Fprintf(out, "  node %d  peer %s  client %s  %s\n", m.ID, m.PeerAddress, m.ClientAddress,
			filepath.Join(dir, fmt.Sprintf("node%d", m.ID))+"/{config.yaml,docker-compose.yaml,dlock.service}")
		eps = append(eps, m.ClientAddress)
	}
	fmt.Fprintf(out, "  nodes   %s\n", filepath.Join(dir, config.NodesFile))
	fmt.Fprintf(out, "export DLOCK_ENDPOINTS=%s\n", strings.Join(eps, ","))
	fmt.Fprintln(out, "Copy each nodeN directory to its machine and start it there: see docs/operations.md.")
}

func printKubeSummary(out io.Writer, o genOptions) {
	path := filepath.Join(o.out, o.kube.Name+".yaml")
	fmt.Fprintf(out, "dlock config gen: %d-node Kubernetes manifest written to %s\n", len(o.kube.Members()), path)
	for _, m := range o.kube.Members() {
		fmt.Fprintf(out, "  pod %s  node %d  client %s\n", o.kube.PodName(m.ID), m.ID, m.ClientAddress)
	}
	fmt.Fprintf(out, "Apply it with: kubectl apply -f %s\n", path)
}

func sortedByID(ms []config.Member) []config.Member {
	out := slices.Clone(ms)
	slices.SortFunc(out, func(a, b config.Member) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
