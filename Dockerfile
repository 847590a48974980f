# dlock image: the static dlock binary on an empty base.
#
# Nothing is pulled or compiled here. Build the binary on the host first
# (`make image` does both steps):
#
#   CGO_ENABLED=0 go build -trimpath -o build/image/dlock ./cmd/dlock
#   mkdir -p build/image/data
#   docker build -t dlock:dev .
#
# The image runs `dlock serve --config /etc/dlock/config.yaml` as uid/gid
# 65532 (no root, no shell) in /data, the volume for Raft data and logs: a
# seed config's relative paths ("./var/persistence.db") land in /data/var.
# Mount the node's config file at /etc/dlock/config.yaml.
FROM scratch

COPY build/image/dlock /dlock
# An empty directory from the build context, so that /data exists owned by
# the runtime user: a named volume mounted there starts with that owner.
COPY --chown=65532:65532 build/image/data /data
# Likewise /tls, where deploy/compose/docker-compose.tls.yml mounts the
# volume `dlock certs init` writes the certificates to.
COPY --chown=65532:65532 build/image/data /tls

USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
# 14005: Raft and peer traffic; 24005: clients (the seed's node 1 ports);
# 9405: metrics, /healthz and /readyz when the config sets
# observability.metrics_address to it (dlock config gen --kubernetes does).
EXPOSE 14005 24005 9405
ENTRYPOINT ["/dlock"]
CMD ["serve", "--config", "/etc/dlock/config.yaml"]
