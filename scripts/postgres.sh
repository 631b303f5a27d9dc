# Shell functions shared by the test and benchmark scripts: install PostgreSQL, start a
# throwaway cluster, stop everything it started. Source it; it defines functions only.

postgres_bindir() {
    local candidate
    if command -v pg_config >/dev/null 2>&1; then
        candidate="$(pg_config --bindir)"
        if [ -x "$candidate/initdb" ]; then
            echo "$candidate"
            return 0
        fi
    fi
    for candidate in /usr/lib/postgresql/*/bin; do
        if [ -x "$candidate/initdb" ]; then
            echo "$candidate"
            return 0
        fi
    done
}

postgres_install_if_missing() {
    local missing=()
    [ -n "$(postgres_bindir)" ] || missing+=(postgresql)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    echo "installing ${missing[*]}" >&2
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: ${missing[*]} missing and this user cannot apt-get install them" >&2
        exit 1
    fi
    # Keep the package from starting its own cluster: the tests start theirs, and
    # nothing may be left running afterwards.
    local policy=/usr/sbin/policy-rc.d created_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        created_policy=yes
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    if [ -n "$created_policy" ]; then
        rm -f "$policy"
    fi
}

# Runs a command as the cluster's owner: initdb and postgres refuse to run as root.
postgres_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

postgres_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# POSTGRES_DURABLE=1 starts the cluster with fsync, synchronous_commit and full-page
# writes on, as a production server runs: benchmarks whose figures include durability.
postgres_start_cluster() {
    local bindir durability
    if [ "${POSTGRES_DURABLE:-0}" = 1 ]; then
        durability=$'fsync = on\nsynchronous_commit = on\nfull_page_writes = on'
    else
        durability=$'fsync = off\nsynchronous_commit = off\nfull_page_writes = off'
    fi
    bindir="$(postgres_bindir)"
    POSTGRES_TMPDIR="$(mktemp -d /tmp/rowhook-test.XXXXXX)"
    chmod 755 "$POSTGRES_TMPDIR"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$POSTGRES_TMPDIR"
    fi
    local data="$POSTGRES_TMPDIR/data"
    local port
    port="$(postgres_free_port)"
    postgres_as_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust -E UTF8 \
        --locale=C.UTF-8 >"$POSTGRES_TMPDIR/initdb.log" 2>&1 || {
        cat "$POSTGRES_TMPDIR/initdb.log" >&2
        exit 1
    }
    # A test CA and a server certificate it signs, so TLS modes can be tested (a
    # self-signed CA certificate may not serve as the server's own).
    (
        cd "$POSTGRES_TMPDIR" &&
            openssl req -new -x509 -days 2 -nodes -subj "/CN=rowhook test CA" \
                -keyout ca.key -out ca.crt &&
            openssl req -new -nodes -subj "/CN=localhost" -keyout server.key -out server.csr &&
            printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' >server.ext &&
            openssl x509 -req -days 2 -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
                -extfile server.ext -out server.crt
    ) >/dev/null 2>&1
    install -m 600 -o "$(stat -c %U "$data")" "$POSTGRES_TMPDIR/server.key" "$data/server.key"
    install -m 644 -o "$(stat -c %U "$data")" "$POSTGRES_TMPDIR/server.crt" "$data/server.crt"
    postgres_as_owner tee -a "$data/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$POSTGRES_TMPDIR'
wal_level = logical
max_replication_slots = 200
max_wal_senders = 200
max_connections = 400
shared_buffers = 128MB
$durability
ssl = on
password_encryption = 'scram-sha-256'
log_min_messages = warning
EOF
    # Password methods are tested on their own roles; everything else is trusted.
    postgres_as_owner tee "$data/pg_hba.conf" >/dev/null <<EOF
local all all trust
host all rowhook_scram 127.0.0.1/32 scram-sha-256
host all rowhook_md5 127.0.0.1/32 md5
host all rowhook_cleartext 127.0.0.1/32 password
hostssl all rowhook_tls 127.0.0.1/32 scram-sha-256
hostnossl all rowhook_tls 127.0.0.1/32 reject
host all all 127.0.0.1/32 trust
EOF
    postgres_as_owner "$bindir/pg_ctl" -D "$data" -l "$POSTGRES_TMPDIR/postgres.log" -w -t 60 start >/dev/null
    "$bindir/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 <<'EOF'
CREATE ROLE rowhook_scram LOGIN REPLICATION SUPERUSER PASSWORD 'scram secret';
CREATE ROLE rowhook_tls LOGIN REPLICATION SUPERUSER PASSWORD 'tls secret';
SET password_encryption = 'md5';
CREATE ROLE rowhook_md5 LOGIN REPLICATION SUPERUSER PASSWORD 'md5 secret';
CREATE ROLE rowhook_cleartext LOGIN REPLICATION SUPERUSER PASSWORD 'clear secret';
EOF
    export ROWHOOK_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
    export ROWHOOK_TEST_PG_BINDIR="$bindir"
    export ROWHOOK_TEST_PG_DATA="$data"
    export ROWHOOK_TEST_TMPDIR="$POSTGRES_TMPDIR"
    export ROWHOOK_TEST_ROOT_CERT="$POSTGRES_TMPDIR/ca.crt"
    echo "PostgreSQL test cluster on port $port in $POSTGRES_TMPDIR" >&2
}

# Stops the shared cluster and any cluster a test started under the same directory.
postgres_stop_everything() {
    local status=$?
    # This runs as an EXIT trap, often because something failed: carry on regardless.
    set +e
    [ -n "${POSTGRES_TMPDIR:-}" ] || return "$status"
    local bindir data
    bindir="$(postgres_bindir)"
    for data in "$POSTGRES_TMPDIR"/data "$POSTGRES_TMPDIR"/clusters/*/data; do
        if [ -f "$data/postmaster.pid" ]; then
            postgres_as_owner "$bindir/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
        fi
    done
    # Anything still running from the directory (a crashed test's server, a test binary).
    pkill -9 -f "$POSTGRES_TMPDIR" 2>/dev/null || true
    rm -rf "$POSTGRES_TMPDIR"
    return "$status"
}
