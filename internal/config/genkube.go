package config

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"text/template"
)

// Kubernetes is a cluster run as a StatefulSet: pod <Name>-<i> is member i+1, reached at its stable
// DNS name under a headless Service. Manifest writes the StatefulSet, the Services, a
// PodDisruptionBudget and a ConfigMap holding one config per pod, each made by MemberConfig (with
// listenAll: a pod listens on 0.0.0.0 and advertises its DNS name). Each pod picks its own file by
// name: the container runs `dlock serve --config /etc/dlock/$(POD_NAME).yaml`, which Kubernetes
// expands from the POD_NAME environment variable, since the image has no shell.
type Kubernetes struct {
	// Base gives every node its parameters, storage and limits; nil means GenBase().
	Base *Config
	// Name names the StatefulSet, its headless Service and the pods. Default "dlock".
	Name string
	// Namespace is where everything goes. Default "default".
	Namespace string
	// Replicas is the number of nodes, 1 to MembersMax (3 or 5 for fault tolerance). Required.
	Replicas int
	// Image is the dlock image the pods run. Default "dlock:dev".
	Image string
	// ClusterDomain is the cluster's DNS domain. Default "cluster.local".
	ClusterDomain string
	// StorageSize is each pod's volume claim, a Kubernetes quantity. Default "1Gi".
	StorageSize string
}

// The ports every pod uses: the seed's node 1 ports, also the image's EXPOSE, and the
// observability port (metrics, /healthz, /readyz) that the probes and Prometheus use.
const (
	kubePeerPort    = 14005
	kubeClientPort  = 24005
	kubeMetricsPort = 9405
)

var (
	// A DNS-1035 label short enough for pod names and StatefulSet revision labels (63 - 11).
	kubeNameRE     = regexp.MustCompile(`^[a-z]([-a-z0-9]{0,50}[a-z0-9])?$`)
	kubeLabelRE    = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	kubeDomainRE   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$`)
	kubeQuantityRE = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$`)
)

// withDefaults returns k with empty fields set to their defaults.
func (k Kubernetes) withDefaults() Kubernetes {
	set := func(s *string, def string) {
		if *s == "" {
			*s = def
		}
	}
	set(&k.Name, "dlock")
	set(&k.Namespace, "default")
	set(&k.Image, defaultImage)
	set(&k.ClusterDomain, "cluster.local")
	set(&k.StorageSize, "1Gi")
	return k
}

func (k Kubernetes) check() error {
	var errs []error
	if !kubeNameRE.MatchString(k.Name) {
		errs = append(errs, fmt.Errorf("name %q: want lowercase letters, digits and '-', starting with a letter, at most 52", k.Name))
	}
	if !kubeLabelRE.MatchString(k.Namespace) {
		errs = append(errs, fmt.Errorf("namespace %q: want a DNS label (lowercase letters, digits, '-')", k.Namespace))
	}
	if !kubeDomainRE.MatchString(k.ClusterDomain) {
		errs = append(errs, fmt.Errorf("cluster domain %q: want a DNS name such as cluster.local", k.ClusterDomain))
	}
	if !kubeQuantityRE.MatchString(k.StorageSize) {
		errs = append(errs, fmt.Errorf("storage size %q: want a quantity such as 1Gi or 500Mi", k.StorageSize))
	}
	if k.Replicas < 1 || k.Replicas > MembersMax {
		errs = append(errs, fmt.Errorf("replicas %d: want 1 to %d (3 or 5 for fault tolerance)", k.Replicas, MembersMax))
	}
	errs = append(errs, checkImage(k.Image))
	return errors.Join(errs...)
}

// PodName is the name of the pod that runs member id.
func (k Kubernetes) PodName(id uint32) string {
	return fmt.Sprintf("%s-%d", k.withDefaults().Name, id-1)
}

// Members returns the cluster's members: id i+1 is pod <Name>-<i>, dialled at
// <pod>.<Name>.<Namespace>.svc.<ClusterDomain> on port 14005 (Raft) and 24005 (clients).
func (k Kubernetes) Members() []Member {
	k = k.withDefaults()
	ms := make([]Member, 0, k.Replicas)
	for i := 1; i <= k.Replicas; i++ {
		host := fmt.Sprintf("%s.%s.%s.svc.%s", k.PodName(uint32(i)), k.Name, k.Namespace, k.ClusterDomain)
		ms = append(ms, Member{
			ID:            uint32(i),
			PeerAddress:   net.JoinHostPort(host, strconv.Itoa(kubePeerPort)),
			ClientAddress: net.JoinHostPort(host, strconv.Itoa(kubeClientPort)),
		})
	}
	return ms
}

// Files returns the manifest as <Name>.yaml: a ConfigMap <Name>-config with one config per pod
// (key <pod>.yaml), a headless Service <Name>, a client Service <Name>-client, a
// PodDisruptionBudget that keeps a majority up, and the StatefulSet. Every problem with the options
// is returned at once, before anything is generated.
func (k Kubernetes) Files() ([]GenFile, error) {
	k = k.withDefaults()
	if err := k.check(); err != nil {
		return nil, err
	}
	members := k.Members()
	v := kubeVars{Kubernetes: k, Quorum: k.Replicas/2 + 1, PeerPort: kubePeerPort, ClientPort: kubeClientPort,
		MetricsPort: kubeMetricsPort}
	base := kubeBase(k.Base)
	for _, m := range members {
		text, err := renderMember(base, m.ID, members, true)
		if err != nil {
			return nil, err
		}
		v.Configs = append(v.Configs, kubeConfig{Key: k.PodName(m.ID) + ".yaml", Text: string(text)})
	}
	manifest, err := execute(kubeTemplate, v)
	if err != nil {
		return nil, err
	}
	return []GenFile{{Path: k.Name + ".yaml", Data: manifest, Mode: 0o644}}, nil
}

type kubeVars struct {
	Kubernetes
	Quorum                            int
	PeerPort, ClientPort, MetricsPort int
	Configs                           []kubeConfig
}

// kubeBase is base (GenBase if nil) with the observability endpoint on every interface at
// kubeMetricsPort, which the pods' probes and Prometheus's annotations name: it replaces any
// metrics address base sets, and keeps its other observability settings.
func kubeBase(base *Config) *Config {
	if base == nil {
		base = GenBase()
	}
	c := *base
	c.Observability.MetricsAddress = net.JoinHostPort("0.0.0.0", strconv.Itoa(kubeMetricsPort))
	return &c
}

type kubeConfig struct {
	Key  string
	Text string
}

// indent prefixes every non-empty line of s with n spaces, for a YAML block scalar.
func indent(n int, s string) string {
	pad := strings.Repeat(" ", n)
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = pad + l
		}
	}
	return strings.Join(lines, "\n")
}

var kubeTemplate = template.Must(template.New("kubernetes manifest").Funcs(template.FuncMap{
	"quote": strconv.Quote, "indent": indent,
}).Parse(`# dlock on Kubernetes: a {{.Replicas}}-node cluster in namespace {{.Namespace}}, written by
#   dlock config gen --kubernetes --replicas {{.Replicas}} --name {{.Name}} --namespace {{.Namespace}} \
#     --image {{.Image}} --cluster-domain {{.ClusterDomain}} --storage-size {{.StorageSize}}
# Apply with: kubectl apply -f {{.Name}}.yaml
# Every pod's config lists every member, so regenerate this file (do not edit
# the configs, or scale the StatefulSet, by hand) to change the cluster.
# Clients: {{.Name}}-client.{{.Namespace}}.svc:{{.ClientPort}}, or every pod's address (the Go client
# and the CLI then find the leader themselves).
---
# One config per pod, made by the same code as ` + "`dlock config gen`" + `'s files.
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{.Name}}-config
  namespace: {{.Namespace}}
  labels:
    app.kubernetes.io/name: dlock
    app.kubernetes.io/instance: {{.Name}}
data:
{{- range .Configs}}
  {{.Key}}: |
{{indent 4 .Text}}
{{- end}}
---
# Headless: gives each pod the stable name <pod>.{{.Name}}.{{.Namespace}}.svc that its peers dial.
# Not-ready pods are published too: peers must reach each other to elect a leader.
apiVersion: v1
kind: Service
metadata:
  name: {{.Name}}
  namespace: {{.Namespace}}
  labels:
    app.kubernetes.io/name: dlock
    app.kubernetes.io/instance: {{.Name}}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector:
    app.kubernetes.io/name: dlock
    app.kubernetes.io/instance: {{.Name}}
  ports:
    - name: raft
      port: {{.PeerPort}}
      targetPort: raft
    - name: client
      port: {{.ClientPort}}
      targetPort: client
---
# For clients: any node serves any request (followers forward to the leader).
apiVersion: v1
kind: Service
metadata:
  name: {{.Name}}-client
  namespace: {{.Namespace}}
  labels:
    app.kubernetes.io/name: dlock
    app.kubernetes.io/instance: {{.Name}}
spec:
  selector:
    app.kubernetes.io/name: dlock
    app.kubernetes.io/instance: {{.Name}}
  ports:
    - name: client
      port: {{.ClientPort}}
      targetPort: client
---
# Voluntary disruptions (drains, upgrades) keep a majority, {{.Quorum}} of {{.Replicas}}, running.
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{.Name}}
  namespace: {{.Namespace}}
  labels:
    app.kubernetes.io/name: dlock
    app.kubernetes.io/instance: {{.Name}}
spec:
  minAvailable: {{.Quorum}}
  selector:
    matchLabels:
      app.kubernetes.io/name: dlock
      app.kubernetes.io/instance: {{.Name}}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{.Name}}
  namespace: {{.Namespace}}
  labels:
    app.kubernetes.io/name: dlock
    app.kubernetes.io/instance: {{.Name}}
spec:
  serviceName: {{.Name}}
  replicas: {{.Replicas}}
  # All pods start together: a majority must be up before any of them is ready.
  podManagementPolicy: Parallel
  selector:
    matchLabels:
      app.kubernetes.io/name: dlock
      app.kubernetes.io/instance: {{.Name}}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: dlock
        app.kubernetes.io/instance: {{.Name}}
      # Scraped by a Prometheus that discovers pods by these annotations.
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: "{{.MetricsPort}}"
        prometheus.io/path: /metrics
    spec:
      terminationGracePeriodSeconds: 20
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        fsGroup: 65532
      containers:
        - name: dlock
          image: {{quote .Image}}
          imagePullPolicy: IfNotPresent
          # Kubernetes expands $(POD_NAME): pod {{.Name}}-0 reads /etc/dlock/{{.Name}}-0.yaml.
          args: ["serve", "--config", "/etc/dlock/$(POD_NAME).yaml"]
          env:
            - name: POD_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
          ports:
            - name: raft
              containerPort: {{.PeerPort}}
            - name: client
              containerPort: {{.ClientPort}}
            - name: metrics
              containerPort: {{.MetricsPort}}
          # Ready while the node is a member that knows a serving leader and
          # has caught up (observability.metrics_address, /readyz); not-ready
          # pods leave the client Service, and clients move on to another.
          readinessProbe:
            httpGet:
              path: /readyz
              port: metrics
            periodSeconds: 5
            timeoutSeconds: 2
          # Alive while the process answers HTTP at all. A node without a
          # leader is alive: restarting it would not bring a leader back.
          livenessProbe:
            httpGet:
              path: /healthz
              port: metrics
            initialDelaySeconds: 10
            periodSeconds: 10
            timeoutSeconds: 2
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: ["ALL"]
          volumeMounts:
            - name: config
              mountPath: /etc/dlock
              readOnly: true
            - name: data
              mountPath: /data
      volumes:
        - name: config
          configMap:
            name: {{.Name}}-config
  volumeClaimTemplates:
    - metadata:
        name: data
      spec:
        accessModes: ["ReadWriteOnce"]
        resources:
          requests:
            storage: {{.StorageSize}}
`))
