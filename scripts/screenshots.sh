#!/usr/bin/env bash
# Takes the README's screenshots of the admin pages: starts a throwaway cluster, a small
# receiver, and `rowhook run` with one webhook that succeeds and one whose endpoint is
# down (with an alert target told about it), makes changes for a minute or so, and opens
# the pages in headless Chromium (Debian's `chromium` package). Writes
# docs/screenshots/{webhooks,events,failing,event,row}.png.
set -euo pipefail

cd "$(dirname "$0")/.."
source scripts/postgres.sh

command -v chromium >/dev/null || {
    echo "error: chromium is not installed (apt-get install chromium)" >&2
    exit 1
}
postgres_install_if_missing
postgres_start_cluster
work="$POSTGRES_TMPDIR/screenshots"
mkdir -p "$work" docs/screenshots
cleanup() {
    [ -n "${rowhook_pid:-}" ] && kill "$rowhook_pid" 2>/dev/null
    [ -n "${receiver_pid:-}" ] && kill "$receiver_pid" 2>/dev/null
    wait 2>/dev/null
    postgres_stop_everything
}
trap cleanup EXIT

cargo build --release --locked --quiet
receiver_port="$(postgres_free_port)"
admin_port="$(postgres_free_port)"
closed_port="$(postgres_free_port)"
python3 - "$receiver_port" <<'EOF' &
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"received": true}')
    def log_message(self, *arguments):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
EOF
receiver_pid=$!

psql -q "$ROWHOOK_TEST_DATABASE_URL" -c \
    "CREATE TABLE orders (id integer PRIMARY KEY, customer text, status text, total numeric(10, 2))"
cat >"$work/rowhook.toml" <<EOF
[source]
url = "$ROWHOOK_TEST_DATABASE_URL"

[store]
path = "$work/store"

[admin]
listen = "127.0.0.1:$admin_port"
token = "screenshot-token"

[delivery]
retry = ["0s", "200ms"]
timeout = "1s"

[models.order]
table = "orders"

[[webhooks]]
name = "order-to-warehouse"
model = "order"
ordering = "row"
rate = "200/s"
url = "http://127.0.0.1:$receiver_port/orders/{{ item.id }}"
headers = { Authorization = "Bearer warehouse-secret" }
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

[[webhooks]]
name = "crm-sync"
model = "order"
on = ["update"]
url = "http://127.0.0.1:$closed_port/crm"

[[alerts]]
name = "ops"
url = "http://127.0.0.1:$receiver_port/alerts"
body = """{"text": "rowhook: {{ alert.webhook }} {{ alert.kind }}: {{ alert.message }}"}"""
EOF
target/release/rowhook --config "$work/rowhook.toml" setup >/dev/null
ROWHOOK_LOG=error target/release/rowhook --config "$work/rowhook.toml" run &
rowhook_pid=$!
sleep 2
psql -q "$ROWHOOK_TEST_DATABASE_URL" <<'EOF'
INSERT INTO orders VALUES (1001, 'Ada', 'new', 49.90), (1002, 'Grace', 'new', 12.00),
                          (1003, 'Linus', 'new', 230.00);
UPDATE orders SET status = 'paid' WHERE id IN (1001, 1003);
EOF
# A minute or so of traffic, so that the charts have bars in more than one minute.
for round in $(seq 1 14); do
    psql -q "$ROWHOOK_TEST_DATABASE_URL" -c \
        "INSERT INTO orders SELECT n, 'shopper ' || n, 'new', n % 97
           FROM generate_series($((2000 + round * 100)), $((2040 + round * 103))) n;
         UPDATE orders SET status = 'packed' WHERE id % 3 = 0 AND status = 'new';"
    sleep 5
done
psql -q "$ROWHOOK_TEST_DATABASE_URL" -c "UPDATE orders SET status = 'shipped' WHERE id = 1001"
sleep 3

base="http://admin:screenshot-token@127.0.0.1:$admin_port"
event_id="$(curl -fsS -H "Authorization: Bearer screenshot-token" \
    "http://127.0.0.1:$admin_port/api/events?webhook=crm-sync&limit=1" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["events"][0]["id"])')"
shoot() {
    chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$(mktemp -d)" --window-size=1280,900 --hide-scrollbars \
        --screenshot="docs/screenshots/$1.png" "$2" 2>/dev/null
}
shoot webhooks "$base/"
shoot events "$base/webhooks/order-to-warehouse"
shoot failing "$base/webhooks/crm-sync"
shoot event "$base/events/$event_id"
shoot row "$base/rows?model=order&key=1001"
ls -l docs/screenshots
