#!/bin/sh
# make run: create a demo configuration and data folder under ./var on first use, start
# the mock Microsoft APIs (so the demo needs no internet) and serve in the foreground.
# Stop with Ctrl-C.
set -eu
bin=$1
mock=$(dirname "$bin")/kagari-mock
mkdir -p var/mock
if [ ! -f var/mock/cert.pem ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout var/mock/key.pem -out var/mock/cert.pem -days 3650 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
    chmod 600 var/mock/key.pem
fi
if [ ! -f var/kagari.conf.lua ]; then
    "$bin" init --config var/kagari.conf.lua --data data --playbooks ../playbooks \
        --listen 127.0.0.1:8080 --tenant demo --api 127.0.0.1:8444 >var/init.out
    cat var/init.out
    token=$(sed -n 's/^intake token (shown once): //p' var/init.out)
    rm -f var/init.out
    secret=$(printf 'mock-secret-value-1' | "$bin" secret encrypt --config var/kagari.conf.lua)
    cat >>var/kagari.conf.lua <<CONF

-- Demo: the tenant's Microsoft APIs are the local mock (tests/mock), started by make run.
connectors = { ca_file = "mock/cert.pem" }
tenants = {
    demo = {
        microsoft = {
            authority = "https://127.0.0.1:8443",
            graph = "https://127.0.0.1:8443",
            defender = "https://127.0.0.1:8443",
            tenant_id = "8f3c1a2b-0000-4000-8000-000000000001",
            client_id = "5e1b7a90-0000-4000-8000-00000000f006",
            client_secret = "$secret",
        },
    },
}
CONF
    # The demo analyst: a random password kept in var/ (a demo, not a secret); TOTP is
    # enrolled at the first login in the portal (the secret printed here is not needed).
    pw=$(openssl rand -hex 12)
    printf '%s\n' "$pw" >var/demo-analyst.txt
    chmod 600 var/demo-analyst.txt
    printf '%s\n' "$pw" | "$bin" user add analyst --role demo:analyst \
        --config var/kagari.conf.lua >/dev/null
    cat <<TXT

The portal: https://127.0.0.1:8444/ (a self-signed certificate: var/tls/api-cert.pem)
  user: analyst   password: $pw   (kept in var/demo-analyst.txt)
  The first login shows a QR code: add it to an authenticator app, then enter its code.

Send the example alert (in another terminal):
  $bin alert send --config var/kagari.conf.lua --token $token docs/examples/alert.json
or with curl:
  curl -H 'Authorization: Bearer $token' -H 'Content-Type: application/json' \\
       --data @docs/examples/alert.json http://127.0.0.1:8080/api/v1/alerts
then list the runs and see what the mock APIs were asked to do:
  $bin runs --config var/kagari.conf.lua
  curl -s --cacert var/mock/cert.pem https://127.0.0.1:8443/_mock/counters

TXT
else
    cat <<TXT
Using the existing var/kagari.conf.lua. The demo token was shown when it was created;
issue a new one with:
  $bin tenant token demo --config var/kagari.conf.lua
TXT
    if [ -f var/demo-analyst.txt ]; then
        echo "The portal: https://127.0.0.1:8444/ (user: analyst, password in var/demo-analyst.txt)"
    fi
fi
"$mock" --listen 127.0.0.1:8443 --tls-cert var/mock/cert.pem --tls-key var/mock/key.pem \
    >var/mock/mock.out 2>var/mock/mock.log &
mock_pid=$!
trap 'kill $mock_pid 2>/dev/null' EXIT INT TERM
"$bin" serve --config var/kagari.conf.lua
