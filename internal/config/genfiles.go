package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
	"text/template"
)

// Machines is a cluster with one node per machine (or VM), each run by Docker Compose or systemd.
// Files generates everything the machines need.
type Machines struct {
	// Base gives every node its parameters, storage and limits; nil means GenBase().
	Base *Config
	// Members are the nodes: ids and the addresses peers and clients dial.
	Members []Member
	// ListenAll makes each node listen on 0.0.0.0 and advertise its peer address (see MemberConfig).
	ListenAll bool
	// Image is the container image the Compose files run. Default "dlock:dev".
	Image string
	// Binary is the dlock binary's absolute path in the systemd unit. Default "/usr/local/bin/dlock".
	Binary string
}

const (
	defaultImage  = "dlock:dev"
	defaultBinary = "/usr/local/bin/dlock"
	// NodesFile is the file, beside the node directories, that lists the members in ParseMembers'
	// form, so that `dlock config gen --nodes-file` can regenerate the same cluster.
	NodesFile = "nodes.txt"
)

// Files returns, for each member in id order, node<ID>/config.yaml (MemberConfig, rendered),
// node<ID>/docker-compose.yaml and node<ID>/dlock.service, plus NodesFile. It checks the members
// (CheckMembers) and options first and returns every problem without generating anything.
func (m Machines) Files() ([]GenFile, error) {
	image, binary := m.Image, m.Binary
	if image == "" {
		image = defaultImage
	}
	if binary == "" {
		binary = defaultBinary
	}
	errs := []error{CheckMembers(m.Members), checkImage(image)}
	if !path.IsAbs(binary) || strings.ContainsAny(binary, " \t\n\"'\\%$") {
		errs = append(errs, fmt.Errorf("binary path %q: want an absolute path without spaces, quotes or %%", binary))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	members := sortedMembers(m.Members)
	var files []GenFile
	var nodes strings.Builder
	nodes.WriteString("# The cluster's nodes, one per line: ID=PEER_HOST:PORT,CLIENT_HOST:PORT\n")
	for _, mb := range members {
		fmt.Fprintf(&nodes, "%d=%s,%s\n", mb.ID, mb.PeerAddress, mb.ClientAddress)
		cfg, err := renderMember(m.Base, mb.ID, members, m.ListenAll)
		if err != nil {
			return nil, err
		}
		health := mb.ClientAddress
		if m.ListenAll {
			// The node listens on every interface; its advertised address may not be one of them.
			_, port, _ := net.SplitHostPort(mb.ClientAddress)
			health = net.JoinHostPort("127.0.0.1", port)
		}
		v := nodeFileVars{ID: mb.ID, N: len(members), Image: image, Binary: binary, Health: health,
			Host: hostOf(mb.PeerAddress)}
		compose, err := execute(composeTemplate, v)
		if err != nil {
			return nil, err
		}
		unit, err := execute(unitTemplate, v)
		if err != nil {
			return nil, err
		}
		dir := "node" + strconv.FormatUint(uint64(mb.ID), 10)
		files = append(files,
			GenFile{Path: path.Join(dir, "config.yaml"), Data: cfg, Mode: 0o644},
			GenFile{Path: path.Join(dir, "docker-compose.yaml"), Data: compose, Mode: 0o644},
			GenFile{Path: path.Join(dir, "dlock.service"), Data: unit, Mode: 0o644},
		)
	}
	files = append(files, GenFile{Path: NodesFile, Data: []byte(nodes.String()), Mode: 0o644})
	return files, nil
}

// checkImage rejects an image reference that could not appear in a Compose file or manifest as is.
func checkImage(image string) error {
	if image == "" || strings.ContainsAny(image, " \t\n\"'\\$") {
		return fmt.Errorf("image %q: want an image reference such as dlock:dev or registry.example/dlock:1.0", image)
	}
	return nil
}

func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

type nodeFileVars struct {
	ID     uint32
	N      int
	Image  string
	Binary string
	Health string // the client address the health check dials
	Host   string // the machine, as the node's peer address names it
}

var genFuncs = template.FuncMap{
	// quote writes s as a double-quoted YAML (and JSON) string.
	"quote": strconv.Quote,
}

func execute(t *template.Template, v any) ([]byte, error) {
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return nil, fmt.Errorf("generate %s: %w", t.Name(), err)
	}
	return b.Bytes(), nil
}

var composeTemplate = template.Must(template.New("docker-compose.yaml").Funcs(genFuncs).Parse(
	`# dlock node {{.ID}} of {{.N}}, written by ` + "`dlock config gen`" + `. On the machine {{.Host}},
# with the image loaded (docker save {{.Image}} | ssh {{.Host}} docker load), run here:
#   docker compose up -d        (Compose v1: docker-compose up -d)
# The node binds the machine's own addresses (config.yaml), so it uses the
# host's network; its Raft log and snapshots live in the volume "data".
version: "2.4"

services:
  dlock:
    image: {{quote .Image}}
    network_mode: host
    restart: unless-stopped
    stop_grace_period: 15s
    volumes:
      - ./config.yaml:/etc/dlock/config.yaml:ro
      - data:/data
    healthcheck:
      test: ["CMD", "/dlock", "health", "--endpoint", {{quote .Health}}, "--timeout", "2s"]
      interval: 10s
      timeout: 5s
      start_period: 10s

volumes:
  data: {}
`))

var unitTemplate = template.Must(template.New("dlock.service").Funcs(genFuncs).Parse(
	`# dlock node {{.ID}} of {{.N}}, written by ` + "`dlock config gen`" + `. On the machine {{.Host}}:
#   install -m 0755 dlock {{.Binary}}
#   install -D -m 0644 config.yaml /etc/dlock/config.yaml
#   install -m 0644 dlock.service /etc/systemd/system/dlock.service
#   systemctl daemon-reload && systemctl enable --now dlock
[Unit]
Description=dlock node {{.ID}} (Raft-replicated lock service)
Documentation=https://github.com/dlock-raft/dlock/blob/main/docs/operations.md
Wants=network-online.target
After=network-online.target

[Service]
ExecStart={{.Binary}} serve --config /etc/dlock/config.yaml
# The config's relative storage paths (./var) land in /var/lib/dlock, owned
# by a user systemd allocates; nothing runs as root.
DynamicUser=yes
StateDirectory=dlock
WorkingDirectory=/var/lib/dlock
# SIGTERM stops the node gracefully: calls in flight finish, a leader hands over.
KillSignal=SIGTERM
TimeoutStopSec=20s
Restart=on-failure
RestartSec=2s
LimitNOFILE=65536
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
`))
