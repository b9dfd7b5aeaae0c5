#!/bin/sh
# make run: create a demo configuration and data folder under ./var on first use, then
# serve in the foreground. Stop with Ctrl-C.
set -eu
bin=$1
mkdir -p var
if [ ! -f var/kagari.conf.lua ]; then
    "$bin" init --config var/kagari.conf.lua --data data --playbooks ../playbooks \
        --listen 127.0.0.1:8080 --tenant demo >var/init.out
    cat var/init.out
    token=$(sed -n 's/^intake token (shown once): //p' var/init.out)
    rm -f var/init.out
    cat <<TXT

Send the example alert (in another terminal):
  $bin alert send --config var/kagari.conf.lua --token $token docs/examples/alert.json
or with curl:
  curl -H 'Authorization: Bearer $token' -H 'Content-Type: application/json' \\
       --data @docs/examples/alert.json http://127.0.0.1:8080/api/v1/alerts
then list the runs:
  $bin runs --config var/kagari.conf.lua

TXT
else
    cat <<TXT
Using the existing var/kagari.conf.lua. The demo token was shown when it was created;
issue a new one with:
  $bin tenant token demo --config var/kagari.conf.lua
TXT
fi
exec "$bin" serve --config var/kagari.conf.lua
