# syntax=docker/dockerfile:1
#
# rowhook in a container:
#
#   docker build -t rowhook .
#   docker run -d --name rowhook \
#     -v "$PWD/config:/app/config:ro" -v rowhook-data:/app/data \
#     -e DATABASE_URL -e ROWHOOK_ADMIN_TOKEN -p 8480:8480 rowhook
#
# The configuration is not baked in: mount a directory holding rowhook.toml at
# /app/config. In a container its [admin] table needs `listen = "0.0.0.0:8480"`: the
# default 127.0.0.1 is the container's own loopback, which a published port never
# reaches.

# --- build ----------------------------------------------------------------------------
# Bookworm here and below: the binary links against the builder's glibc, so the runtime
# image must carry the same one. The slim image's gcc and libc6-dev are all the native
# code needs: aws-lc-sys (rustls' crypto) builds with the cc crate, without cmake or
# clang, and TLS is rustls throughout, so no OpenSSL.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src

# Cargo.toml names the benchmarks, and cargo refuses a manifest whose targets are
# missing, so benches/ is needed even though the release build does not compile it.
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
COPY src ./src

# BuildKit cache mounts keep the downloaded crates and the compiled dependencies from
# one build to the next, so a source change recompiles rowhook alone. They are not part
# of the image, hence the binary is copied out in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && cp target/release/rowhook /usr/local/bin/rowhook

# --- runtime --------------------------------------------------------------------------
FROM debian:bookworm-slim

# CA certificates: rowhook trusts the system's roots for https webhooks and for
# PostgreSQL with sslmode=verify-ca/verify-full when sslrootcert is not given. Nothing
# else is needed beyond libc.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid, so that volume ownership can be set from the host
# (`chown 10001 data`) and Kubernetes' runAsNonRoot can verify the user.
RUN groupadd --system --gid 10001 rowhook \
    && useradd --system --uid 10001 --gid rowhook --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin rowhook

COPY --from=build /usr/local/bin/rowhook /usr/local/bin/rowhook

# The default paths config/rowhook.toml and data/rowhook are relative to the working
# directory, so they resolve to the two volumes below. /app/data belongs to rowhook
# because Docker gives a new named volume the ownership of the directory it mounts
# over; the configuration is only read. Both are prepared before VOLUME, which discards
# later build changes to them.
WORKDIR /app
RUN mkdir -p config data && chown rowhook:rowhook data
VOLUME ["/app/config", "/app/data"]

USER 10001:10001

# Logs go to stderr, colored even when it is not a terminal; plain text is what
# `docker logs` and log collectors want.
ENV NO_COLOR=1

# The admin server (health, metrics, API, pages), when [admin] listens on 0.0.0.0:8480.
# No HEALTHCHECK: the image has no HTTP client; point the orchestrator's HTTP probe at
# GET /healthz, which needs no token.
EXPOSE 8480

# rowhook is PID 1 and handles SIGTERM itself: capture stops, attempts under way get up
# to 10 s to finish (give `docker stop` a longer timeout, e.g. -t 20, to let them).
ENTRYPOINT ["rowhook"]
CMD ["run"]
