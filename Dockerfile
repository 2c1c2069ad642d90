# The image that action.yml runs (docker://ghcr.io/<owner>/flagramp:vX.Y.Z), for linux/amd64 and
# linux/arm64. Two targets give it the same runtime:
#
#   docker buildx build --platform linux/amd64,linux/arm64 -t flagramp .
#       the default (the last stage): the binary is built from source in the build stage below,
#       natively on each platform (under QEMU for arm64 on an amd64 host).
#   docker buildx build --platform linux/amd64,linux/arm64 --target release -t flagramp .
#       what .github/workflows/release.yml builds: the static binaries that workflow
#       cross-compiled, and publishes on the GitHub Release, copied from prebuilt/<arch>/flagramp
#       in the build context, so nothing is compiled under QEMU.
#
# No container engine runs on the project's machines: scripts/lint checks this file with hadolint
# and builds the same binary the same way (cargo build --release --locked --target
# x86_64-unknown-linux-musl), checks that it is static and runs it.
#
# Base images are pinned by version tag, and Dependabot (.github/dependabot.yml) proposes newer
# ones; tests/release.rs fails on a base without a version.

# ---------------------------------------------------------------------------------------------
# Build: a static musl release binary. The official Rust image on Alpine already carries gcc and
# musl-dev, which ring (rustls' crypto provider; there is no OpenSSL) needs to compile its C and
# assembly. On each platform the build runs natively (under QEMU for arm64 when the build host is
# amd64), so the target below is also the image's host target.
# ---------------------------------------------------------------------------------------------
FROM rust:1.95.0-alpine3.23 AS build

# Set by BuildKit/buildx from --platform (amd64, arm64); empty with the legacy builder, where the
# build container's own architecture decides.
ARG TARGETARCH

# WORKDIR is fine in this stage: the rule against it is about the final image only.
WORKDIR /build

RUN arch="${TARGETARCH:-$(apk --print-arch)}"; \
    case "$arch" in \
        amd64|x86_64) target=x86_64-unknown-linux-musl ;; \
        arm64|aarch64) target=aarch64-unknown-linux-musl ;; \
        *) echo >&2 "unsupported architecture: $arch"; exit 1 ;; \
    esac; \
    echo "$target" > /rust-target

# Dependencies first, in a layer of their own that only a change to Cargo.toml or Cargo.lock
# invalidates (a release's version bump is one): a placeholder crate with the real manifest
# builds every dependency once, and rebuilds of changed sources start from there.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked --target "$(cat /rust-target)" \
    && rm -rf src

# The real sources. touch: COPY keeps the files' own modification times, which may be older than
# the placeholder's build, and cargo would then take the placeholder binary as up to date.
COPY src ./src
RUN find src -type f -exec touch {} + \
    && target="$(cat /rust-target)" \
    && cargo build --release --locked --target "$target" \
    && mkdir /out \
    && cp "target/$target/release/flagramp" /out/flagramp \
    && /out/flagramp --version

# ---------------------------------------------------------------------------------------------
# Runtime: Alpine, so that command checks in specs still find sh, curl, jq and CA certificates
# (reqwest's rustls verifier reads the system's CA bundle). Both targets below add only the binary.
#
# No USER and no WORKDIR, as GitHub requires of container actions: the runner starts the
# container as the image's default user (root), mounts the repository at /github/workspace and
# sets the working directory to it itself (GITHUB_WORKSPACE); a non-root USER could not write
# to the mounted workspace or to the GITHUB_OUTPUT/GITHUB_STEP_SUMMARY files, and a WORKDIR
# would be overridden anyway.
# ---------------------------------------------------------------------------------------------
FROM alpine:3.23 AS runtime

LABEL org.opencontainers.image.title="flagramp" \
      org.opencontainers.image.description="Roll a feature flag out in stages, only while its metrics stay healthy." \
      org.opencontainers.image.source="https://github.com/flagramp/flagramp" \
      org.opencontainers.image.url="https://github.com/flagramp/flagramp" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0"

# Unpinned on purpose: Alpine keeps only the newest build of a package in a release's
# repository, so a pinned version breaks the build as soon as a security fix lands; the
# alpine:3.23 base pins the release branch instead.
# hadolint ignore=DL3018
RUN apk add --no-cache ca-certificates curl jq

ENTRYPOINT ["/usr/local/bin/flagramp", "action"]

# ---------------------------------------------------------------------------------------------
# Release: the binary the release workflow cross-compiled for this platform, checked against
# SHA256SUMS and laid out as prebuilt/amd64/flagramp and prebuilt/arm64/flagramp by that workflow.
# BuildKit builds only the stages a target needs, so the default target below needs no prebuilt/
# and this one compiles nothing.
# ---------------------------------------------------------------------------------------------
FROM runtime AS release

# Set by BuildKit/buildx from --platform (amd64, arm64).
ARG TARGETARCH

COPY prebuilt/${TARGETARCH}/flagramp /usr/local/bin/flagramp

# ---------------------------------------------------------------------------------------------
# Default: the binary built from source above.
# ---------------------------------------------------------------------------------------------
FROM runtime

COPY --from=build /out/flagramp /usr/local/bin/flagramp
