package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite deploy/kubernetes/dlock.yaml from the generator")

func machines(n int) []Member {
	var ms []Member
	for i := 1; i <= n; i++ {
		ms = append(ms, Member{ID: uint32(i),
			PeerAddress: fmt.Sprintf("10.0.0.%d:14005", i), ClientAddress: fmt.Sprintf("10.0.0.%d:24005", i)})
	}
	return ms
}

// fileMap indexes generated files by path.
func fileMap(t *testing.T, files []GenFile) map[string][]byte {
	t.Helper()
	m := make(map[string][]byte, len(files))
	for _, f := range files {
		if _, dup := m[f.Path]; dup {
			t.Fatalf("file %s generated twice", f.Path)
		}
		m[f.Path] = f.Data
	}
	return m
}

// Every generated config parses and validates, names its own node's id and addresses, and lists the
// same members as every other node's: the members given, whatever order they were given in.
func TestGenMachinesConfigs(t *testing.T) {
	tests := []struct {
		name      string
		give      []Member
		listenAll bool
	}{
		{"one node", machines(1), false},
		{"three nodes", machines(3), false},
		{"five nodes given out of order", []Member{machines(5)[3], machines(5)[0], machines(5)[4], machines(5)[2], machines(5)[1]}, false},
		{"three nodes listening on every interface", machines(3), true},
		{"two nodes on one machine", []Member{
			{ID: 7, PeerAddress: "host-a.example:14005", ClientAddress: "host-a.example:24005"},
			{ID: 9, PeerAddress: "host-a.example:14006", ClientAddress: "host-a.example:24006"},
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, err := Machines{Members: tt.give, ListenAll: tt.listenAll}.Files()
			if err != nil {
				t.Fatalf("Files() error = %v, want nil", err)
			}
			byPath := fileMap(t, files)
			want := sortedMembers(tt.give)
			if got := len(files); got != 3*len(want)+1 {
				t.Errorf("%d files, want %d (3 per node and %s)", got, 3*len(want)+1, NodesFile)
			}
			for _, m := range want {
				path := fmt.Sprintf("node%d/config.yaml", m.ID)
				c, err := Parse(byPath[path])
				if err != nil {
					t.Fatalf("%s does not parse: %v\n%s", path, err, byPath[path])
				}
				checkSelf(t, path, c, m, tt.listenAll)
				checkMembers(t, path, c, want, tt.listenAll)
			}
		})
	}
}

// checkSelf checks that c is member m's config.
func checkSelf(t *testing.T, what string, c *Config, m Member, listenAll bool) {
	t.Helper()
	wantSelf, wantCli, wantAdvertise := m.PeerAddress, m.ClientAddress, ""
	if listenAll {
		wantSelf, wantCli, wantAdvertise = anyHost(m.PeerAddress), anyHost(m.ClientAddress), m.PeerAddress
	}
	got := []any{c.ID.SelfID, c.Network.SelfAddress, c.Network.SelfCliAddress, c.Network.AdvertiseAddress}
	want := []any{m.ID, wantSelf, wantCli, wantAdvertise}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: self_id, self_address, self_cli_address, advertise_address = %q, want %q", what, got, want)
	}
}

// checkMembers checks that c lists want as the cluster's members. A node that listens on every
// interface knows its own client address only as 0.0.0.0:PORT (there is no advertise key for the
// client plane); every other node's file names it by the address given.
func checkMembers(t *testing.T, what string, c *Config, want []Member, listenAll bool) {
	t.Helper()
	want = slices.Clone(want)
	for i := range want {
		if listenAll && want[i].ID == c.ID.SelfID {
			want[i].ClientAddress = anyHost(want[i].ClientAddress)
		}
	}
	if got := c.Members(); !reflect.DeepEqual(got, want) {
		t.Errorf("%s members = %+v, want %+v", what, got, want)
	}
}

// A base config gives every node its parameters, storage and limits; its id and network are replaced.
func TestGenBaseCarriesParameters(t *testing.T) {
	base := threeNodes()
	base.Parameters.HeartbeatInterval = Millis(100 * time.Millisecond)
	base.Storage.DataDir = "/srv/dlock"
	base.Limits.WaitersPerLockMax = 7
	files, err := Machines{Base: base, Members: machines(3)}.Files()
	if err != nil {
		t.Fatalf("Files() error = %v, want nil", err)
	}
	c, err := Parse(fileMap(t, files)["node2/config.yaml"])
	if err != nil {
		t.Fatalf("node2/config.yaml does not parse: %v", err)
	}
	got := []any{c.Parameters.HeartbeatInterval, c.Storage.DataDir, c.Limits.WaitersPerLockMax, c.ID.SelfID}
	want := []any{base.Parameters.HeartbeatInterval, "/srv/dlock", 7, uint32(2)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("heart_beat_interval, data_dir, waiters_per_lock_max, self_id = %v, want %v", got, want)
	}
}

// Without a base, nodes keep the seed's storage layout under their working directory and log to
// standard error.
func TestGenBaseDefaults(t *testing.T) {
	c := GenBase()
	if err := c.Validate(); err != nil {
		t.Fatalf("GenBase().Validate() = %v, want nil", err)
	}
	got := []string{c.LogStorePath(), c.DataDir(), c.LogFile()}
	want := []string{"./var/persistence.db", "var", ""}
	if !slices.Equal(got, want) {
		t.Errorf("LogStorePath, DataDir, LogFile = %q, want %q", got, want)
	}
}

// The per-node Compose file runs the image on the host's network with the node's config and a data
// volume; the systemd unit runs the binary with the config from /etc/dlock.
func TestGenMachinesServiceFiles(t *testing.T) {
	files, err := Machines{Members: machines(3), Image: "registry.example/dlock:1.0", Binary: "/opt/dlock/bin/dlock"}.Files()
	if err != nil {
		t.Fatalf("Files() error = %v, want nil", err)
	}
	byPath := fileMap(t, files)
	var compose struct {
		Services map[string]struct {
			Image       string
			NetworkMode string `yaml:"network_mode"`
			Volumes     []string
			Healthcheck struct{ Test []string }
		}
		Volumes map[string]any
	}
	if err := yaml.Unmarshal(byPath["node2/docker-compose.yaml"], &compose); err != nil {
		t.Fatalf("node2/docker-compose.yaml is not YAML: %v", err)
	}
	svc := compose.Services["dlock"]
	got := []any{svc.Image, svc.NetworkMode, svc.Volumes, svc.Healthcheck.Test[len(svc.Healthcheck.Test)-3]}
	want := []any{"registry.example/dlock:1.0", "host",
		[]string{"./config.yaml:/etc/dlock/config.yaml:ro", "data:/data"}, "10.0.0.2:24005"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("compose image, network_mode, volumes, health endpoint = %q, want %q", got, want)
	}
	unit := string(byPath["node2/dlock.service"])
	for _, line := range []string{"ExecStart=/opt/dlock/bin/dlock serve --config /etc/dlock/config.yaml",
		"WorkingDirectory=/var/lib/dlock", "StateDirectory=dlock", "DynamicUser=yes", "[Install]"} {
		if !strings.Contains(unit, "\n"+line+"\n") {
			t.Errorf("node2/dlock.service lacks the line %q:\n%s", line, unit)
		}
	}
}

// nodes.txt lists the members in the form --nodes-file reads, so the cluster can be regenerated.
func TestGenNodesFileRoundTrips(t *testing.T) {
	give := machines(5)
	files, err := Machines{Members: give}.Files()
	if err != nil {
		t.Fatalf("Files() error = %v, want nil", err)
	}
	got, err := ParseMembers(bytes.NewReader(fileMap(t, files)[NodesFile]))
	if err != nil || !reflect.DeepEqual(got, give) {
		t.Errorf("ParseMembers(%s) = %+v, %v; want %+v, nil", NodesFile, got, err, give)
	}
}

func TestParseMember(t *testing.T) {
	tests := []struct {
		give    string
		want    Member
		wantErr string
	}{
		{give: "1=10.0.0.1:14005,10.0.0.1:24005", want: Member{1, "10.0.0.1:14005", "10.0.0.1:24005"}},
		{give: " 12 = a.example:1 , b.example:2 ", want: Member{12, "a.example:1", "b.example:2"}},
		{give: "4294967295=[fd00::1]:14005,[fd00::1]:24005", want: Member{4294967295, "[fd00::1]:14005", "[fd00::1]:24005"}},
		{give: "10.0.0.1:14005,10.0.0.1:24005", wantErr: "no '='"},
		{give: "1=10.0.0.1:14005", wantErr: "want two addresses"},
		{give: "1=a:1,b:2,c:3", wantErr: "want two addresses"},
		{give: "one=a:1,b:2", wantErr: `id "one" is not a number`},
		{give: "0=a:1,b:2", wantErr: `id "0" is not a number in 1..4294967295`},
		{give: "4294967296=a:1,b:2", wantErr: `id "4294967296" is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			got, err := ParseMember(tt.give)
			if got != tt.want || !errorContains(err, tt.wantErr) {
				t.Errorf("ParseMember(%q) = %+v, %v; want %+v, error containing %q", tt.give, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// A nodes file reports every bad line by number and skips comments and blank lines.
func TestParseMembersNamesLines(t *testing.T) {
	give := "# prod\n1=h1:14005,h1:24005\n\n  # spare\n2=h2:14005\nthree=h3:1,h3:2\n"
	_, err := ParseMembers(strings.NewReader(give))
	for _, want := range []string{"line 5: ", "line 6: "} {
		if !errorContains(err, want) {
			t.Errorf("ParseMembers error = %v, want one containing %q", err, want)
		}
	}
}

func errorContains(err error, want string) bool {
	if want == "" {
		return err == nil
	}
	return err != nil && strings.Contains(err.Error(), want)
}

// Bad input gives an error naming the node and what is wrong with it, and writes nothing.
func TestGenRefusesBadInput(t *testing.T) {
	three := machines(3)
	with := func(i int, f func(m *Member)) []Member {
		ms := slices.Clone(three)
		f(&ms[i])
		return ms
	}
	tests := []struct {
		name    string
		give    Generator
		wantErr []string
	}{
		{"zero nodes", Machines{}, []string{"no nodes given"}},
		{"ten nodes", Machines{Members: machines(10)}, []string{"10 nodes given; a cluster has at most 9"}},
		// "all ids are globally unique ... 0 is invalid for id."
		{"duplicate id", Machines{Members: with(2, func(m *Member) { m.ID = 2 })},
			[]string{"node id 2 is given twice"}},
		{"id 0", Machines{Members: with(0, func(m *Member) { m.ID = 0 })}, []string{"node id 0 is reserved"}},
		// "all addresses should be globally unique"
		{"duplicate peer address", Machines{Members: with(1, func(m *Member) { m.PeerAddress = "10.0.0.1:14005" })},
			[]string{`node 2 peer address "10.0.0.1:14005" is also the node 1 peer address`}},
		{"client address reused as a peer address", Machines{Members: with(2, func(m *Member) { m.ClientAddress = "10.0.0.2:14005" })},
			[]string{`node 3 client address "10.0.0.2:14005" is also the node 2 peer address`}},
		// addresses are host:port, dialable by the other nodes
		{"address without port", Machines{Members: with(1, func(m *Member) { m.PeerAddress = "10.0.0.2" })},
			[]string{`node 2 peer address: "10.0.0.2" is not host:port`}},
		{"port out of range", Machines{Members: with(1, func(m *Member) { m.ClientAddress = "10.0.0.2:70000" })},
			[]string{`node 2 client address: port "70000" of "10.0.0.2:70000" is not a number in 1..65535`}},
		{"address without host", Machines{Members: with(0, func(m *Member) { m.PeerAddress = ":14005" })},
			[]string{`node 1 peer address: ":14005" has no host`}},
		{"every-interface address", Machines{Members: with(0, func(m *Member) { m.ClientAddress = "0.0.0.0:24005" })},
			[]string{`node 1 client address: "0.0.0.0:24005" means every interface`}},
		{"every problem at once", Machines{Members: with(1, func(m *Member) { m.ID, m.PeerAddress = 0, "x" })},
			[]string{"node id 0 is reserved", `node 0 peer address: "x" is not host:port`}},
		{"image with a space", Machines{Members: three, Image: "dlock dev"}, []string{`image "dlock dev"`}},
		{"relative binary", Machines{Members: three, Binary: "bin/dlock"}, []string{`binary path "bin/dlock"`}},

		{"kubernetes: zero replicas", Kubernetes{}, []string{"replicas 0: want 1 to 9"}},
		{"kubernetes: ten replicas", Kubernetes{Replicas: 10}, []string{"replicas 10: want 1 to 9"}},
		{"kubernetes: bad names", Kubernetes{Replicas: 3, Name: "Locks", Namespace: "a_b", ClusterDomain: "-x",
			StorageSize: "lots"}, []string{`name "Locks"`, `namespace "a_b"`, `cluster domain "-x"`, `storage size "lots"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			err := Generate(dir, tt.give, false)
			for _, want := range tt.wantErr {
				if !errorContains(err, want) {
					t.Errorf("Generate error = %v, want one containing %q", err, want)
				}
			}
			if _, statErr := os.Stat(dir); !errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("Generate wrote %s (stat: %v), want nothing written", dir, statErr)
			}
		})
	}
}

// A file in the way stops Generate before it writes anything, unless overwrite is set.
func TestGenDoesNotOverwrite(t *testing.T) {
	dir := t.TempDir()
	g := Machines{Members: machines(3)}
	taken := filepath.Join(dir, "node3", "dlock.service")
	if err := os.MkdirAll(filepath.Dir(taken), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(taken, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := Generate(dir, g, false)
	if !errorContains(err, taken+" exists") {
		t.Errorf("Generate error = %v, want one naming %s", err, taken)
	}
	if _, err := os.Stat(filepath.Join(dir, "node1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("node1 written although %s was in the way (stat: %v)", taken, err)
	}
	if err := Generate(dir, g, true); err != nil {
		t.Fatalf("Generate with overwrite = %v, want nil", err)
	}
	info, err := os.Stat(taken)
	if err != nil || info.Mode().Perm() != 0o644 {
		t.Errorf("overwritten %s: %v, %v; want mode 0644 (configs must be readable by the container's user)", taken, info, err)
	}
}

// kubeObject is the part of a Kubernetes object the tests read.
type kubeObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string
	Metadata   struct {
		Name, Namespace string
		Labels          map[string]string
	}
	Data map[string]string
	Spec yaml.Node
}

func kubeObjects(t *testing.T, manifest []byte) map[string]kubeObject {
	t.Helper()
	objs := map[string]kubeObject{}
	dec := yaml.NewDecoder(bytes.NewReader(manifest))
	for {
		var o kubeObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("manifest is not YAML: %v\n%s", err, manifest)
		}
		key := o.Kind + "/" + o.Metadata.Name
		if _, dup := objs[key]; dup {
			t.Fatalf("%s appears twice", key)
		}
		objs[key] = o
	}
}

// decodeSpec decodes the spec of object key ("Kind/name") into v.
func decodeSpec(t *testing.T, objs map[string]kubeObject, key string, v any) {
	t.Helper()
	o, ok := objs[key]
	if !ok {
		t.Fatalf("the manifest has no %s", key)
	}
	if err := o.Spec.Decode(v); err != nil {
		t.Fatalf("%s spec: %v", key, err)
	}
}

// statefulSetSpec is the part of a StatefulSet's spec the tests read.
type statefulSetSpec struct {
	ServiceName         string `yaml:"serviceName"`
	Replicas            int
	PodManagementPolicy string `yaml:"podManagementPolicy"`
	Selector            struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	Template struct {
		Metadata struct{ Labels map[string]string }
		Spec     struct {
			Containers []struct {
				Image string
				Args  []string
				Env   []struct {
					Name      string
					ValueFrom struct {
						FieldRef struct {
							FieldPath string `yaml:"fieldPath"`
						} `yaml:"fieldRef"`
					} `yaml:"valueFrom"`
				}
				VolumeMounts []struct {
					Name      string
					MountPath string `yaml:"mountPath"`
				} `yaml:"volumeMounts"`
			}
			Volumes []struct {
				Name      string
				ConfigMap struct{ Name string } `yaml:"configMap"`
			}
		}
	}
}

// The manifest parses; the ConfigMap holds one valid config per pod, naming that pod's member; the
// StatefulSet's pods find their file by name; the Services and the budget select those pods.
func TestGenKubernetesManifest(t *testing.T) {
	for _, replicas := range []int{1, 3, 5} {
		t.Run(fmt.Sprintf("%d replicas", replicas), func(t *testing.T) {
			k := Kubernetes{Replicas: replicas, Name: "locks", Namespace: "infra", Image: "registry.example/dlock:1.0"}
			files, err := k.Files()
			if err != nil {
				t.Fatalf("Files() error = %v, want nil", err)
			}
			if len(files) != 1 || files[0].Path != "locks.yaml" {
				t.Fatalf("files = %v, want just locks.yaml", files)
			}
			objs := kubeObjects(t, files[0].Data)
			checkPodConfigs(t, k, objs["ConfigMap/locks-config"])
			checkStatefulSet(t, k, objs)
			checkServices(t, objs, replicas/2+1)
		})
	}
}

func checkPodConfigs(t *testing.T, k Kubernetes, cm kubeObject) {
	t.Helper()
	if len(cm.Data) != k.Replicas {
		t.Fatalf("ConfigMap holds %d configs, want %d", len(cm.Data), k.Replicas)
	}
	for i := 0; i < k.Replicas; i++ {
		key := fmt.Sprintf("locks-%d.yaml", i)
		c, err := Parse([]byte(cm.Data[key]))
		if err != nil {
			t.Fatalf("config %s does not parse: %v\n%s", key, err, cm.Data[key])
		}
		host := fmt.Sprintf("locks-%d.locks.infra.svc.cluster.local", i)
		checkSelf(t, key, c, Member{ID: uint32(i + 1), PeerAddress: host + ":14005", ClientAddress: host + ":24005"}, true)
		checkMembers(t, key, c, k.Members(), true)
	}
}

func checkStatefulSet(t *testing.T, k Kubernetes, objs map[string]kubeObject) {
	t.Helper()
	var spec statefulSetSpec
	decodeSpec(t, objs, "StatefulSet/locks", &spec)
	if got := []any{spec.ServiceName, spec.Replicas, spec.PodManagementPolicy}; !reflect.DeepEqual(got, []any{"locks", k.Replicas, "Parallel"}) {
		t.Errorf("serviceName, replicas, podManagementPolicy = %v, want [locks %d Parallel]", got, k.Replicas)
	}
	if !reflect.DeepEqual(spec.Selector.MatchLabels, spec.Template.Metadata.Labels) {
		t.Errorf("selector %v does not match the pod labels %v", spec.Selector.MatchLabels, spec.Template.Metadata.Labels)
	}
	ctr := spec.Template.Spec.Containers[0]
	env := ctr.Env[0]
	if ctr.Image != k.Image || env.Name != "POD_NAME" || env.ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("image %q, env %+v; want %q and POD_NAME from metadata.name", ctr.Image, env, k.Image)
	}
	// Kubernetes expands $(POD_NAME) in args; the file the pod then reads must be in the ConfigMap.
	if want := []string{"serve", "--config", "/etc/dlock/$(POD_NAME).yaml"}; !slices.Equal(ctr.Args, want) {
		t.Errorf("args = %q, want %q", ctr.Args, want)
	}
	mounts := map[string]string{}
	for _, m := range ctr.VolumeMounts {
		mounts[m.Name] = m.MountPath
	}
	vol := spec.Template.Spec.Volumes[0]
	if mounts["config"] != "/etc/dlock" || mounts["data"] != "/data" || vol.Name != "config" || vol.ConfigMap.Name != "locks-config" {
		t.Errorf("mounts %v, volume %+v; want ConfigMap locks-config at /etc/dlock and data at /data", mounts, vol)
	}
	cm := objs["ConfigMap/locks-config"]
	for i := 0; i < k.Replicas; i++ {
		pod := fmt.Sprintf("locks-%d", i)
		if _, ok := cm.Data[strings.TrimPrefix(strings.ReplaceAll(ctr.Args[2], "$(POD_NAME)", pod), "/etc/dlock/")]; !ok {
			t.Errorf("pod %s would read %s, which the ConfigMap lacks", pod, strings.ReplaceAll(ctr.Args[2], "$(POD_NAME)", pod))
		}
	}
}

func checkServices(t *testing.T, objs map[string]kubeObject, quorum int) {
	t.Helper()
	var headless struct {
		ClusterIP                string            `yaml:"clusterIP"`
		PublishNotReadyAddresses bool              `yaml:"publishNotReadyAddresses"`
		Selector                 map[string]string `yaml:"selector"`
	}
	decodeSpec(t, objs, "Service/locks", &headless)
	if headless.ClusterIP != "None" || !headless.PublishNotReadyAddresses {
		t.Errorf("headless Service = %+v, want clusterIP None publishing not-ready pods", headless)
	}
	if _, ok := objs["Service/locks-client"]; !ok {
		t.Error("no client Service locks-client")
	}
	var pdb struct {
		MinAvailable int `yaml:"minAvailable"`
		Selector     struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		}
	}
	decodeSpec(t, objs, "PodDisruptionBudget/locks", &pdb)
	if pdb.MinAvailable != quorum || !reflect.DeepEqual(pdb.Selector.MatchLabels, headless.Selector) {
		t.Errorf("PodDisruptionBudget = %+v, want minAvailable %d selecting %v", pdb, quorum, headless.Selector)
	}
}

// deploy/kubernetes/dlock.yaml is what `dlock config gen --kubernetes` writes with its defaults.
// After changing the generator, refresh it with: go test ./internal/config -run KubernetesExample -update
func TestGenKubernetesExampleIsCurrent(t *testing.T) {
	files, err := Kubernetes{Replicas: 3}.Files()
	if err != nil {
		t.Fatalf("Files() error = %v, want nil", err)
	}
	path := filepath.Join("..", "..", "deploy", "kubernetes", "dlock.yaml")
	if *update {
		if err := os.WriteFile(path, files[0].Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the example: %v", err)
	}
	if !bytes.Equal(got, files[0].Data) {
		t.Errorf("%s differs from the generator's output; run go test ./internal/config -run KubernetesExample -update and review the diff", path)
	}
}
