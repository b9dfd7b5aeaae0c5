-- kagari.conf.lua: configuration of the kagari SOAR engine (written by `kagari init`).
--
-- This file is Lua, evaluated as data only: tables, strings, numbers, booleans and
-- operators (.. + - * /) work; there are no functions or libraries (no os, no io).
-- Every global is a setting: an unknown or misspelt name is an error that names its
-- line, so a typo cannot pass silently. Use `local` for helper values, e.g.
--     local base = "/srv/kagari"
--     data_dir = base .. "/data"
-- A setting left out takes the default shown here.
--
-- Sizes are a number of bytes or a string: "512k", "4MiB", "1GiB".
-- Durations are a number of seconds or a string: "500ms", "30s", "15m", "2h", "1d".
-- Relative paths are resolved against the folder of this file.

-- Where the engine keeps its data: control.db (tenants, portal users, sessions,
-- platform audit) and one SQLite file per tenant in tenants/. Deleting a tenant's
-- file deletes its data, so keep this folder on storage in the agreed region, and
-- back it up. Default: "data" next to this file.
data_dir = "/var/lib/kagari"

-- Folder of the Lua playbooks and their helper libraries. Default: "playbooks"
-- next to this file.
playbook_dir = "/var/lib/kagari/playbooks"

-- Alert intake and the portal: the HTTP(S) listener.
intake = {
    -- Address and port to listen on, "host:port" ("[::1]:8443" for IPv6).
    -- Default: "127.0.0.1:8080" (this machine only).
    listen = "127.0.0.1:8080",
    -- Largest request body accepted (one alert or a batch); bigger ones are refused.
    max_body = "4MiB",
    -- Largest request line and headers accepted; bigger ones are refused.
    max_header = "16KiB",
    -- Most client connections open at once.
    max_conns = 1024,
    -- A client must send its headers within header_timeout and its body within
    -- body_timeout; a keep-alive connection idle for idle_timeout is closed.
    header_timeout = "10s",
    body_timeout = "30s",
    idle_timeout = "60s",
    -- Load shedding: while this many playbook runs wait for the CPU, new alerts are
    -- refused with 503 (senders retry) instead of queueing without bound.
    max_queued_runs = 100000,
    -- TLS: the PEM certificate chain and its private key (keep the key mode 0600).
    -- Set both to serve HTTPS; leave both out for plain HTTP, which is only fit for
    -- loopback or behind a TLS-terminating proxy.
    tls = {
        -- cert = "tls/cert.pem",
        -- key = "tls/key.pem",
    },
}

-- Limits of playbook runs. Playbooks are untrusted code: each tenant has its own Lua
-- state, and each run its own budget; a run over a limit fails, the engine does not.
runs = {
    -- Memory of one tenant's Lua state, shared by all its runs (waiting runs too).
    memory = "256MiB",
    -- Lua instructions one run may execute (waiting costs none).
    instructions = 100000000,
    -- Wall-clock limit of one run, waits for approvals and APIs included (24h).
    timeout = "1d",
    -- A busy run gives the CPU to the others after this long, then continues.
    slice = "5ms",
}

-- Logs, on standard error.
log = {
    -- Least important level written: "debug", "info", "warn" or "err".
    level = "info",
    -- "kv" for key=value lines, "json" for one JSON object per line.
    format = "kv",
}

-- Outgoing calls of the connectors (Microsoft Graph and Defender, webhooks).
connectors = {
    -- Key of the secrets written in this file as "enc:v1:..." (`kagari secret encrypt`
    -- uses it too). Keep it mode 0600 and back it up apart from this file: without it,
    -- those secrets cannot be read.
    key_file = "secret.key",
    -- PEM bundle of the certificate authorities trusted for outgoing HTTPS.
    -- Default: the system's.
    -- ca_file = "/etc/ssl/certs/ca-certificates.crt",
    -- Proxy for every outgoing call, "http://host:port" (or https://).
    -- Default: none, direct connections (proxy environment variables are ignored).
    -- proxy = "http://proxy.example.jp:3128",
    -- Time limit of one attempt of a call, the answer included.
    timeout = "30s",
    -- Attempts of one call, 1 to 20: a call answered 429, 503 or 504, or cut by a
    -- network error, is tried again until this many attempts have been made.
    max_attempts = 5,
}

-- Per-tenant settings, keyed by tenant id (lowercase letters, digits and '-'; write
-- ["acme-corp"] = { ... } for an id with a '-'). A tenant not listed here has no
-- microsoft block, an empty http.allow and dry_run = false. Remove the leading "-- "
-- of the lines below to start from this example.
-- tenants = {
--     demo = {
--         -- true: record what the playbooks would do without sending anything.
--         dry_run = false,
--         -- The customer's Entra ID app registration (client credentials grant).
--         microsoft = {
--             -- Directory (tenant) id: a GUID, or a domain such as contoso.onmicrosoft.com.
--             tenant_id = "11111111-2222-3333-4444-555555555555",
--             -- Application (client) id of the app registration.
--             client_id = "66666666-7777-8888-9999-000000000000",
--             -- Client secret, written encrypted: the output of `kagari secret encrypt`.
--             client_secret = "enc:v1:...",
--             -- Or, instead of client_secret, a certificate (PEM) and its key (0600).
--             -- certificate = "certs/demo.pem",
--             -- private_key = "certs/demo.key",
--             -- Sign-in endpoint (change it for national clouds only).
--             authority = "https://login.microsoftonline.com",
--             -- Microsoft Graph base URL.
--             graph = "https://graph.microsoft.com",
--             -- Microsoft Defender for Endpoint API base URL.
--             defender = "https://api.securitycenter.microsoft.com",
--             -- Scope of the tokens requested for the Defender API.
--             defender_scope = "https://api.securitycenter.microsoft.com/.default",
--         },
--         -- Host names the generic http module may call; it refuses any other host.
--         http = { allow = { "hooks.example.jp", "api.example.net" } },
--     },
-- }
