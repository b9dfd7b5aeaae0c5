#!/bin/sh
# make run: the demo. On first use, create ./var: a configuration, a data folder, the demo
# tenant with its intake token in var/intake.token (owner-only), and a copy of the shipped
# playbooks in var/playbooks (edit those; the tracked playbooks/ stay as shipped). Then
# start the mock Microsoft APIs (the demo needs no internet) and the engine, and print
# how to send the example alert and look at what happened. Every run prints the same
# instructions. Ctrl-C stops both (the engine drains as on SIGTERM).
set -eu
bin=$1
mock=$(dirname "$bin")/kagari-mock
conf=var/kagari.conf.lua
# The ports, chosen when var/ is created and kept in var/demo-ports afterwards.
port=${KAGARI_DEMO_PORT:-8080}           # the intake
mock_port=${KAGARI_DEMO_MOCK_PORT:-8443} # the mock APIs
api_port=${KAGARI_DEMO_API_PORT:-8444}   # the portal and the people's API
umask 077
mkdir -p var/mock

if [ ! -f var/mock/cert.pem ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout var/mock/key.pem -out var/mock/cert.pem -days 3650 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
fi

# The token line of `kagari init` or `kagari tenant token`, into var/intake.token.
save_token() {
    sed -n 's/^intake token (shown once): //p' >var/intake.token.new
    if [ ! -s var/intake.token.new ]; then
        echo "make run: no intake token was issued" >&2
        exit 1
    fi
    mv var/intake.token.new var/intake.token
}

# Run a kagari command quietly (its log lines and messages go to var/setup.log), showing
# them only when it fails.
quiet() {
    if ! "$@" 2>>var/setup.log; then
        echo "make run: $* failed:" >&2
        tail -n 20 var/setup.log >&2
        exit 1
    fi
}

copy_playbooks=0
if [ ! -f "$conf" ]; then
    quiet "$bin" init --config "$conf" --data data --playbooks playbooks \
        --listen "127.0.0.1:$port" --tenant demo --api "127.0.0.1:$api_port" >var/init.out
    save_token <var/init.out
    rm -f var/init.out
    secret=$(printf 'mock-secret-value-1' | quiet "$bin" secret encrypt --config "$conf")
    copy_playbooks=1
    cat >>"$conf" <<CONF

-- Demo: the tenant's Microsoft APIs are the local mock (tests/mock), started by make run.
connectors = { ca_file = "mock/cert.pem" }
tenants = {
    demo = {
        microsoft = {
            authority = "https://127.0.0.1:$mock_port",
            graph = "https://127.0.0.1:$mock_port",
            defender = "https://127.0.0.1:$mock_port",
            tenant_id = "8f3c1a2b-0000-4000-8000-000000000001",
            client_id = "5e1b7a90-0000-4000-8000-00000000f006",
            client_secret = "$secret",
        },
    },
}
CONF
    printf 'port=%s\nmock_port=%s\napi_port=%s\n' "$port" "$mock_port" "$api_port" >var/demo-ports
    # The demo analyst for the portal: a random password kept in var/ (a demo, not a
    # secret); TOTP is enrolled at the first login.
    pw=$(openssl rand -hex 12)
    printf '%s\n' "$pw" >var/demo-analyst.txt
    printf '%s\n' "$pw" | quiet "$bin" user add analyst --role demo:analyst --config "$conf" \
        >/dev/null
    echo "created the demo in var/: configuration, data folder, tenant demo, token file,"
    echo "portal user analyst"
fi
# A demo folder made by an older version pointed at the tracked playbooks: give it its
# own copy, so that playbooks written while trying the demo stay out of the source tree.
if grep -q '"\.\./playbooks"' "$conf"; then
    sed -i 's#"\.\./playbooks"#"playbooks"#' "$conf"
    copy_playbooks=1
fi
if [ $copy_playbooks = 1 ]; then
    mkdir -p var/playbooks
    cp -R playbooks/. var/playbooks/
    echo "copied the shipped playbooks to var/playbooks (the demo's playbook folder)"
fi
# The ports the demo was created with (a var/ from before var/demo-ports: the defaults).
if [ -f var/demo-ports ]; then
    . ./var/demo-ports
else
    port=8080 mock_port=8443 api_port=8444
fi
# A demo folder from before the token file: issue a new token (the old one stops working).
if [ ! -s var/intake.token ]; then
    quiet "$bin" tenant token demo --config "$conf" >var/init.out
    save_token <var/init.out
    rm -f var/init.out
fi
chmod 600 var/intake.token

instructions() {
    cat <<TXT

kagari demo: intake http://127.0.0.1:$port, tenant "demo"; mock Microsoft APIs on
https://127.0.0.1:$mock_port (their users and machines: docs/demo.md).
The demo tenant's intake token is in var/intake.token (readable by you only).
TXT
    if [ -f var/demo-analyst.txt ]; then
        cat <<TXT
The portal: https://127.0.0.1:$api_port/ (self-signed certificate: var/tls/api-cert.pem),
user analyst, password in var/demo-analyst.txt; the first login enrols TOTP (QR code).
TXT
    fi
    cat <<TXT

In another terminal, send the example alert (a successful high-risk sign-in):
  $bin alert send --config $conf --token-file var/intake.token docs/examples/alert.json
or with curl:
  curl -H "Authorization: Bearer \$(cat var/intake.token)" -H 'Content-Type: application/json' \\
       --data @docs/examples/alert.json http://127.0.0.1:$port/api/v1/alerts
Then see the runs it started with their results, and the alert itself:
  $bin runs --config $conf
  $bin alert show 1 --config $conf
More: $bin status|alerts|run show N --config $conf; the engine's log is var/kagari.log.
Stop with Ctrl-C here (or $bin stop --config $conf).

TXT
}

if "$bin" status --config "$conf" >/dev/null 2>&1; then
    instructions
    echo "The demo engine is already running ($bin status --config $conf)."
    exit 0
fi

"$mock" --listen "127.0.0.1:$mock_port" --tls-cert var/mock/cert.pem --tls-key var/mock/key.pem \
    >var/mock/mock.out 2>var/mock/mock.log &
mock_pid=$!
"$bin" serve --config "$conf" 2>>var/kagari.log &
serve_pid=$!
# Background jobs of a script ignore SIGINT: Ctrl-C reaches the engine through this trap
# (SIGTERM: it drains), then the mock is stopped.
stop_all() {
    set +e
    kill -TERM "$serve_pid" 2>/dev/null
    wait "$serve_pid" 2>/dev/null
    kill -TERM "$mock_pid" 2>/dev/null
    wait "$mock_pid" 2>/dev/null
}
trap stop_all EXIT
trap 'exit 130' INT TERM
n=0
until "$bin" status --config "$conf" >/dev/null 2>&1; do
    n=$((n + 1))
    if ! kill -0 $serve_pid 2>/dev/null || [ $n -ge 150 ]; then
        echo "make run: the engine did not start; the end of var/kagari.log:" >&2
        tail -n 20 var/kagari.log >&2
        exit 1
    fi
    sleep 0.2
done
instructions
wait $serve_pid
