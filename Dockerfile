# syntax=docker/dockerfile:1
#
# The operator's image: the release binary on a distroless base with no shell and no
# package manager, running as the unprivileged user 65532 (distroless' "nonroot").
#
#   docker build -t grafana-ha-operator:0.1.0 .
#
# No container engine runs in this repository's CI. `make image-check` runs the same
# cargo command on the host and prints the binary's size, and `deploy/check-dockerfile.sh`
# (part of `make lint`) fails when this file's build command and the Makefile's disagree,
# or when the final stage gains a shell command or a root user.
#
# For releases, pin both base images by digest (image@sha256:...) as well as by tag.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# Only what the build reads (.dockerignore keeps the rest out of the context).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The cache mounts keep the crate registry and the target dir between builds; the binary
# is copied out of the mounted target dir in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -D -m 0755 target/release/grafana-ha-operator /out/grafana-ha-operator

# cc-debian12 = glibc + libgcc (the binary links both dynamically) + CA certificates.
FROM ${RUNTIME_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="grafana-ha-operator" \
      org.opencontainers.image.description="Runs Grafana highly available on AWS (RDS, ElastiCache, EFS)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/grafana-ha-operator /usr/local/bin/grafana-ha-operator
# Numeric, so that the kubelet can check runAsNonRoot without a passwd lookup.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/grafana-ha-operator"]
# The Helm chart passes args: ["run"] explicitly; this default makes `docker run IMAGE`
# start the controller too, and `docker run IMAGE crd` print the CRD.
CMD ["run"]
