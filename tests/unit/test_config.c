/* test_config.c: kagari.conf.lua: defaults, every key, both forms of sizes and durations,
 * errors with file:line, runaway files, relative paths, connectors and tenants, and the
 * default file. */
#include "engine/config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "connectors/microsoft.h"
#include "connectors/rest.h"
#include "engine/log.h"
#include "tests/unit/test.h"

/* The connectors' blocks of a tenant (registered by test_main's registry_init). */
#define MSC(t) ((const struct microsoft_conf *)config_tenant_block((t), &microsoft_section))
#define HTTPC(t) ((const struct rest_conf *)config_tenant_block((t), &rest_section))
#define NALLOW(t) (HTTPC(t) != NULL ? HTTPC(t)->nallow : 0)

/* A temporary folder holding the file kagari.conf.lua; the real (absolute) folder name
 * is in real. */
struct tmpconf {
    char dir[64];
    char real[PATH_MAX];
    char path[128];
};

static int
tmpconf_init(struct tmpconf *t)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/kg-config-XXXXXX");
    if (mkdtemp(t->dir) == NULL || realpath(t->dir, t->real) == NULL) {
        return -1;
    }
    snprintf(t->path, sizeof(t->path), "%s/kagari.conf.lua", t->dir);
    return 0;
}

static void
tmpconf_done(struct tmpconf *t)
{
    unlink(t->path);
    rmdir(t->dir);
}

/* Write text to t->path (replacing it) and load it. */
static int
load_text(struct tmpconf *t, const char *text, struct config *cfg, char **errp)
{
    FILE *f;

    unlink(t->path);
    f = fopen(t->path, "w");
    if (f == NULL) {
        return -1;
    }
    fputs(text, f);
    fclose(f);
    return config_load(t->path, cfg, errp);
}

/* Loading text fails with a message that contains want. */
static void
expect_error(struct tmpconf *t, const char *text, const char *want)
{
    struct config cfg;
    char *err = NULL;

    T_EQ_INT(load_text(t, text, &cfg, &err), -1);
    T_CONTAINS(err, want);
    T_ASSERT(cfg.data_dir == NULL);
    free(err);
    config_free(&cfg);
}

static void
check_defaults(const struct config *cfg, const char *dir)
{
    char *want = NULL;

    if (dir != NULL) {
        want = xasprintf("%s/data", dir);
        T_EQ_STR(cfg->data_dir, want);
        free(want);
        want = xasprintf("%s/playbooks", dir);
        T_EQ_STR(cfg->playbook_dir, want);
        free(want);
        T_EQ_STR(cfg->intake.listen, "127.0.0.1:8080");
    }
    T_EQ_INT(cfg->intake.max_body, 4 << 20);
    T_EQ_INT(cfg->intake.max_header, 16 << 10);
    T_EQ_INT(cfg->intake.max_conns, 1024);
    T_EQ_INT(cfg->intake.max_conns_per_peer, 64);
    T_EQ_INT(cfg->intake.tenant_rate, 10000);
    T_EQ_INT(cfg->intake.tenant_burst, 20000);
    T_ASSERT(cfg->intake.header_timeout == 10);
    T_ASSERT(cfg->intake.body_timeout == 30);
    T_ASSERT(cfg->intake.idle_timeout == 60);
    T_EQ_INT(cfg->intake.max_queued_runs, 100000);
    /* one parser thread per CPU, at least one, at most four */
    T_ASSERT(cfg->intake.parse_threads >= 1 && cfg->intake.parse_threads <= 4);
    T_EQ_INT(cfg->intake.parse_queue, 64 << 20);
    T_ASSERT(cfg->intake.tls_cert == NULL);
    T_ASSERT(cfg->intake.tls_key == NULL);
    T_EQ_INT(cfg->runs.memory, 256 << 20);
    T_EQ_INT(cfg->runs.instructions, 100000000);
    T_ASSERT(cfg->runs.timeout == 86400);
    T_ASSERT(cfg->runs.slice_ms == 5);
    T_EQ_INT(cfg->log.level, KG_LOG_INFO);
    T_EQ_INT(cfg->log.json, 0);
    if (dir != NULL) {
        want = xasprintf("%s/secret.key", dir);
        T_EQ_STR(cfg->connectors.key_file, want);
        free(want);
    }
    T_ASSERT(cfg->connectors.ca_file == NULL);
    T_ASSERT(cfg->connectors.proxy == NULL);
    T_ASSERT(cfg->connectors.timeout == 30);
    T_EQ_INT(cfg->connectors.max_attempts, 5);
    T_EQ_INT(cfg->connectors.breaker_threshold, 5);
    T_ASSERT(cfg->connectors.breaker_cooldown == 30);
    T_EQ_INT(cfg->ntenants, 0);
    T_ASSERT(cfg->tenants == NULL);
    T_ASSERT(config_tenant(cfg, "demo") == NULL);
}

static void
test_defaults_from_empty_file(void)
{
    struct tmpconf t;
    struct config cfg;
    char *err = NULL;

    T_REQUIRE(tmpconf_init(&t) == 0);
    T_EQ_INT(load_text(&t, "", &cfg, &err), 0);
    T_EQ_STR(cfg.path, t.path);
    check_defaults(&cfg, t.real);
    config_free(&cfg);
    T_EQ_INT(load_text(&t, "-- only a comment\n", &cfg, &err), 0);
    check_defaults(&cfg, t.real);
    config_free(&cfg);
    config_free(&cfg); /* twice is harmless */
    tmpconf_done(&t);
}

static void
test_every_key(void)
{
    struct tmpconf t;
    struct config cfg;
    char *err = NULL;
    const char *text = "data_dir = '/srv/kagari'\n"
                       "playbook_dir = '/srv/playbooks'\n"
                       "intake = {\n"
                       "  listen = '[::1]:8443',\n"
                       "  max_body = '8MiB', max_header = 32768, max_conns = 64,\n"
                       "  header_timeout = 5, body_timeout = '1m', idle_timeout = '2m',\n"
                       "  max_queued_runs = 500, max_conns_per_peer = 8,\n"
                       "  tenant_rate = 0, tenant_burst = 50,\n"
                       "  parse_threads = 0, parse_queue = '8MiB',\n"
                       "  tls = { cert = '/etc/k/cert.pem', key = '/etc/k/key.pem' },\n"
                       "}\n"
                       "runs = { memory = '64MiB', instructions = 5e6, timeout = '2h',\n"
                       "         slice = '10ms' }\n"
                       "log = { level = 'debug', format = 'json' }\n";

    T_REQUIRE(tmpconf_init(&t) == 0);
    T_EQ_INT(load_text(&t, text, &cfg, &err), 0);
    if (err != NULL) {
        fprintf(stderr, "    %s\n", err);
        free(err);
    }
    T_EQ_STR(cfg.data_dir, "/srv/kagari");
    T_EQ_STR(cfg.playbook_dir, "/srv/playbooks");
    T_EQ_STR(cfg.intake.listen, "[::1]:8443");
    T_EQ_INT(cfg.intake.max_body, 8 << 20);
    T_EQ_INT(cfg.intake.max_header, 32768);
    T_EQ_INT(cfg.intake.max_conns, 64);
    T_ASSERT(cfg.intake.header_timeout == 5);
    T_ASSERT(cfg.intake.body_timeout == 60);
    T_ASSERT(cfg.intake.idle_timeout == 120);
    T_EQ_INT(cfg.intake.max_queued_runs, 500);
    T_EQ_INT(cfg.intake.max_conns_per_peer, 8);
    T_EQ_INT(cfg.intake.tenant_rate, 0);
    T_EQ_INT(cfg.intake.tenant_burst, 50);
    T_EQ_INT(cfg.intake.parse_threads, 0);
    T_EQ_INT(cfg.intake.parse_queue, 8 << 20);
    T_EQ_STR(cfg.intake.tls_cert, "/etc/k/cert.pem");
    T_EQ_STR(cfg.intake.tls_key, "/etc/k/key.pem");
    T_EQ_INT(cfg.runs.memory, 64 << 20);
    T_EQ_INT(cfg.runs.instructions, 5000000);
    T_ASSERT(cfg.runs.timeout == 7200);
    T_ASSERT(cfg.runs.slice_ms == 10);
    T_EQ_INT(cfg.log.level, KG_LOG_DEBUG);
    T_EQ_INT(cfg.log.json, 1);
    config_free(&cfg);
    tmpconf_done(&t);
}

static void
test_sizes_and_durations(void)
{
    struct tmpconf t;
    struct config cfg;
    char *err = NULL;

    T_REQUIRE(tmpconf_init(&t) == 0);
    T_EQ_INT(load_text(&t,
                       "intake = { max_body = 1048576, max_header = '64k', idle_timeout = 90,"
                       " body_timeout = '1.5m', header_timeout = '500ms' }\n"
                       "runs = { memory = '1GiB', timeout = 3600, slice = 0.002 }\n",
                       &cfg, &err),
             0);
    T_EQ_INT(cfg.intake.max_body, 1 << 20);
    T_EQ_INT(cfg.intake.max_header, 64 << 10);
    T_ASSERT(cfg.intake.idle_timeout == 90);
    T_ASSERT(cfg.intake.body_timeout == 90);
    T_ASSERT(cfg.intake.header_timeout == 0.5);
    T_EQ_INT(cfg.runs.memory, 1 << 30);
    T_ASSERT(cfg.runs.timeout == 3600);
    T_ASSERT(cfg.runs.slice_ms == 2);
    config_free(&cfg);
    T_EQ_INT(load_text(&t, "runs = { slice = 0 }", &cfg, &err), 0);
    T_ASSERT(cfg.runs.slice_ms == 0);
    config_free(&cfg);
    expect_error(&t, "intake = {\n max_body = '4XB' }",
                 ":2: intake.max_body: expected a size such as \"4MiB\"");
    expect_error(&t, "intake = { max_body = 1.5 }", "intake.max_body: expected a whole number");
    expect_error(&t, "intake = { max_body = -1 }", "intake.max_body");
    expect_error(&t, "intake = { max_body = 10 }", "must be at least 1024 bytes");
    expect_error(&t, "runs = { timeout = '1y' }", "runs.timeout: expected a duration");
    expect_error(&t, "runs = { timeout = -5 }", "runs.timeout: expected a duration");
    expect_error(&t, "runs = { timeout = 0 }", "runs.timeout: must be at least");
    expect_error(&t, "runs = { timeout = 1/0 }", "runs.timeout");
    tmpconf_done(&t);
}

static void
test_unknown_key(void)
{
    struct tmpconf t;
    char *want;

    T_REQUIRE(tmpconf_init(&t) == 0);
    want = xasprintf("%s:3: data_dri: unknown setting", t.path);
    expect_error(&t, "-- a typo\n\ndata_dri = '/srv'\n", want);
    free(want);
    want = xasprintf("%s:3: intake.maxbody: unknown setting", t.path);
    expect_error(&t, "log = {}\nintake = {\n  maxbody = 1 }\n", want);
    free(want);
    /* nested errors point at the key's own line, not the closing brace */
    want = xasprintf("%s:4: intake.max_conns: expected a whole number", t.path);
    expect_error(&t,
                 "-- intake = { max_conns = 1 }\nintake = {\n    listen = '127.0.0.1:1',\n"
                 "    max_conns = 'x', -- max_conns = 2\n    max_body = '1MiB',\n}\n",
                 want);
    free(want);
    want = xasprintf("%s:2: runs: expected a table", t.path);
    expect_error(&t, "log = {}\nruns =\n  'fast'\n", want);
    free(want);
    expect_error(&t, "intake = { tls = { crt = 'x' } }", "intake.tls.crt: unknown setting");
    expect_error(&t, "runs = { 1, 2 }", "runs[1]: unknown setting");
    expect_error(&t, "a = 1\nb = 2\nc = 3\n", ":1: a: unknown setting");
    expect_error(&t, "_ENV[1] = 2", "[1]: unknown setting");
    tmpconf_done(&t);
}

static void
test_wrong_type(void)
{
    struct tmpconf t;

    T_REQUIRE(tmpconf_init(&t) == 0);
    expect_error(&t, "intake = { max_conns = 'many' }",
                 ":1: intake.max_conns: expected a whole number, got a string");
    expect_error(&t, "intake = { max_conns = 0 }", "from 1 to 1000000");
    expect_error(&t, "intake = { max_conns_per_peer = 0 }",
                 "intake.max_conns_per_peer: expected a whole number from 1 to 1000000");
    expect_error(&t, "intake = { max_conns_per_peer = 2.5 }", "intake.max_conns_per_peer");
    expect_error(&t, "intake = { tenant_rate = -1 }",
                 "intake.tenant_rate: expected a whole number from 0 to 100000000");
    expect_error(&t, "intake = { tenant_rate = 'fast' }", "intake.tenant_rate");
    expect_error(&t, "intake = { tenant_burst = 0 }",
                 "intake.tenant_burst: expected a whole number from 1 to 100000000");
    expect_error(&t, "intake = { parse_threads = 65 }",
                 "intake.parse_threads: expected a whole number from 0 to 64");
    expect_error(&t, "intake = { parse_threads = -1 }", "intake.parse_threads");
    expect_error(&t, "intake = { parse_queue = 10 }", "must be at least 1024 bytes");
    expect_error(&t, "intake = { max_body = {} }", "expected a size such as \"4MiB\", got a table");
    expect_error(&t, "log = 'debug'", "log: expected a table, got a string");
    expect_error(&t, "log = { level = 'loud' }", "log.level: expected \"debug\"");
    expect_error(&t, "log = { format = 'xml' }", "log.format: expected \"kv\" or \"json\"");
    expect_error(&t, "data_dir = 42", "data_dir: expected a path (a string), got a number");
    expect_error(&t, "data_dir = ''", "data_dir: expected a path");
    expect_error(&t, "intake = { listen = 'nope' }", "intake.listen: expected \"host:port\"");
    expect_error(&t, "intake = { listen = 'h:99999' }", "port from 0 to 65535");
    expect_error(&t, "intake = { listen = 'localhost:8080' }", "not a host name");
    expect_error(&t, "intake = { listen = '[::zz]:8080' }", "numeric IPv4 or [IPv6]");
    expect_error(&t, "intake = { tls = 'yes' }", "intake.tls: expected a table");
    expect_error(&t, "intake = { tls = { cert = '/c.pem' } }",
                 "intake.tls: cert and key must be set together");
    expect_error(&t, "runs = { instructions = '1e8' }",
                 "runs.instructions: expected a whole number");
    expect_error(&t, "runs = { memory = true }", "runs.memory: expected a size");
    tmpconf_done(&t);
}

static void
test_syntax_error(void)
{
    struct tmpconf t;
    char *want;

    T_REQUIRE(tmpconf_init(&t) == 0);
    want = xasprintf("%s:2:", t.path);
    expect_error(&t, "log = {}\ndata_dir = = 1\n", want);
    free(want);
    expect_error(&t, "intake = {", "kagari.conf.lua:1: unexpected symbol near <eof>");
    expect_error(&t, "\x1bLua", "attempt to load a binary chunk");
    tmpconf_done(&t);
}

static void
test_runaway_file_stopped(void)
{
    struct tmpconf t;
    int64_t start;

    T_REQUIRE(tmpconf_init(&t) == 0);
    start = util_now_ms();
    expect_error(&t, "while true do end", "instruction budget exceeded");
    expect_error(&t, "local s = 'x'\nwhile true do s = s .. s end", "not enough memory");
    expect_error(&t, "local t = {} for i = 1, 1e9 do t[i] = i end", ": ");
    /* each .. copies the whole string: bytes count as work */
    expect_error(&t, "local s = 'x' while true do s = #s .. s end", "instruction budget exceeded");
    T_ASSERT(util_now_ms() - start < 5000);
    tmpconf_done(&t);
}

static void
test_no_functions(void)
{
    struct tmpconf t;
    char *want;

    T_REQUIRE(tmpconf_init(&t) == 0);
    want = xasprintf("%s:2: undeclared name 'os'", t.path);
    expect_error(&t, "log = {}\nos.execute('touch /tmp/kg-pwned')\n", want);
    free(want);
    expect_error(&t, "data_dir = io.read()", "undeclared name 'io'");
    expect_error(&t, "data_dir = ('x'):rep(3)", "attempt to index a string value");
    expect_error(&t, "x = require('os')", "undeclared name 'require'");
    T_ASSERT(access("/tmp/kg-pwned", F_OK) == -1);
    tmpconf_done(&t);
}

static void
test_locals_and_operators(void)
{
    struct tmpconf t;
    struct config cfg;
    char *err = NULL;

    T_REQUIRE(tmpconf_init(&t) == 0);
    T_EQ_INT(load_text(&t,
                       "local base = '/srv/kagari'\n"
                       "data_dir = base .. '/data'\n"
                       "intake = { max_conns = 2 * 512, max_body = 4 * 1024 * 1024 }\n"
                       "intake.max_header = '32k'\n",
                       &cfg, &err),
             0);
    T_EQ_STR(cfg.data_dir, "/srv/kagari/data");
    T_EQ_INT(cfg.intake.max_conns, 1024);
    T_EQ_INT(cfg.intake.max_body, 4 << 20);
    T_EQ_INT(cfg.intake.max_header, 32 << 10);
    config_free(&cfg);
    tmpconf_done(&t);
}

static void
test_relative_paths(void)
{
    struct tmpconf t;
    struct config cfg;
    char *err = NULL;
    char *want;

    T_REQUIRE(tmpconf_init(&t) == 0);
    T_EQ_INT(load_text(&t,
                       "data_dir = 'state'\nplaybook_dir = './pb/main'\n"
                       "intake = { tls = { cert = 'tls/cert.pem', key = '/etc/key.pem' } }\n",
                       &cfg, &err),
             0);
    want = xasprintf("%s/state", t.real);
    T_EQ_STR(cfg.data_dir, want);
    free(want);
    want = xasprintf("%s/pb/main", t.real);
    T_EQ_STR(cfg.playbook_dir, want);
    free(want);
    want = xasprintf("%s/tls/cert.pem", t.real);
    T_EQ_STR(cfg.intake.tls_cert, want);
    free(want);
    T_EQ_STR(cfg.intake.tls_key, "/etc/key.pem");
    config_free(&cfg);
    T_EQ_INT(load_text(&t, "data_dir = '.'", &cfg, &err), 0);
    T_EQ_STR(cfg.data_dir, t.real);
    config_free(&cfg);
    tmpconf_done(&t);
}

/* The example of the brief, a second tenant with a certificate, and an id with a '-'. */
static const char tenants_text[] =
    "connectors = {\n"                                      /* 1 */
    "    key_file = '/etc/kagari/secret.key',\n"            /* 2 */
    "    ca_file = '/etc/ssl/certs/ca-certificates.crt',\n" /* 3 */
    "    proxy = 'http://proxy.example.jp:3128',\n"         /* 4 */
    "    timeout = '45s',\n"                                /* 5 */
    "    max_attempts = 7,\n"                               /* 6 */
    "}\n"                                                   /* 7 */
    "tenants = {\n"                                         /* 8 */
    "    demo = {\n"                                        /* 9 */
    "        dry_run = true,\n"                             /* 10 */
    "        microsoft = {\n"                               /* 11 */
    "            tenant_id = '11111111-2222-3333-4444-555555555555',\n"
    "            client_id = '66666666-7777-8888-9999-000000000000',\n"
    "            client_secret = 'enc:v1:c2VjcmV0',\n"
    "            authority = 'https://login.microsoftonline.us/',\n"
    "            graph = 'https://graph.microsoft.us',\n"
    "            defender = 'http://127.0.0.1:8081/defender/',\n"
    "            defender_scope = 'https://api-gov.securitycenter.microsoft.us/.default',\n"
    "            graph_scope = 'https://graph.microsoft.us/.default',\n"
    "        },\n"
    "        http = { allow = { 'hooks.example.jp', 'API.example.net' } },\n"
    "    },\n"
    "    ['acme-corp'] = {\n"
    "        microsoft = {\n"
    "            tenant_id = 'acme.onmicrosoft.com',\n"
    "            client_id = 'abc',\n"
    "            certificate = '/etc/kagari/acme.pem',\n"
    "            private_key = '/etc/kagari/acme.key',\n"
    "        },\n"
    "    },\n"
    "    zeta = {},\n"
    "}\n";

static void
test_tenants_full(void)
{
    struct tmpconf t;
    struct config cfg;
    const struct config_tenant *demo, *acme, *zeta;
    char *err = NULL;

    T_REQUIRE(tmpconf_init(&t) == 0);
    T_EQ_INT(load_text(&t, tenants_text, &cfg, &err), 0);
    if (err != NULL) {
        fprintf(stderr, "    %s\n", err);
        free(err);
        tmpconf_done(&t);
        return;
    }
    T_EQ_STR(cfg.connectors.key_file, "/etc/kagari/secret.key");
    T_EQ_STR(cfg.connectors.ca_file, "/etc/ssl/certs/ca-certificates.crt");
    T_EQ_STR(cfg.connectors.proxy, "http://proxy.example.jp:3128");
    T_ASSERT(cfg.connectors.timeout == 45);
    T_EQ_INT(cfg.connectors.max_attempts, 7);
    /* sorted by id */
    T_REQUIRE(cfg.ntenants == 3);
    T_EQ_STR(cfg.tenants[0].id, "acme-corp");
    T_EQ_STR(cfg.tenants[1].id, "demo");
    T_EQ_STR(cfg.tenants[2].id, "zeta");

    demo = config_tenant(&cfg, "demo");
    T_REQUIRE(demo != NULL);
    T_ASSERT(demo == &cfg.tenants[1]);
    T_EQ_INT(demo->dry_run, 1);
    T_EQ_INT((MSC(demo) != NULL), 1);
    T_EQ_STR(MSC(demo)->tenant_id, "11111111-2222-3333-4444-555555555555");
    T_EQ_STR(MSC(demo)->client_id, "66666666-7777-8888-9999-000000000000");
    T_EQ_STR(MSC(demo)->client_secret, "enc:v1:c2VjcmV0");
    T_ASSERT(MSC(demo)->certificate == NULL);
    T_ASSERT(MSC(demo)->private_key == NULL);
    T_EQ_STR(MSC(demo)->authority, "https://login.microsoftonline.us");
    T_EQ_STR(MSC(demo)->graph, "https://graph.microsoft.us");
    T_EQ_STR(MSC(demo)->defender, "http://127.0.0.1:8081/defender");
    T_EQ_STR(MSC(demo)->defender_scope, "https://api-gov.securitycenter.microsoft.us/.default");
    T_REQUIRE(NALLOW(demo) == 2);
    T_EQ_STR(HTTPC(demo)->allow[0], "hooks.example.jp");
    T_EQ_STR(HTTPC(demo)->allow[1], "api.example.net"); /* lowercased */

    acme = config_tenant(&cfg, "acme-corp");
    T_REQUIRE(acme != NULL);
    T_EQ_INT(acme->dry_run, 0);
    T_EQ_INT((MSC(acme) != NULL), 1);
    T_EQ_STR(MSC(acme)->tenant_id, "acme.onmicrosoft.com");
    T_ASSERT(MSC(acme)->client_secret == NULL);
    T_EQ_STR(MSC(acme)->certificate, "/etc/kagari/acme.pem");
    T_EQ_STR(MSC(acme)->private_key, "/etc/kagari/acme.key");
    /* defaults of the URLs */
    T_EQ_STR(MSC(acme)->authority, "https://login.microsoftonline.com");
    T_EQ_STR(MSC(acme)->graph, "https://graph.microsoft.com");
    T_EQ_STR(MSC(acme)->defender, "https://api.securitycenter.microsoft.com");
    T_EQ_STR(MSC(acme)->defender_scope, "https://api.securitycenter.microsoft.com/.default");
    T_EQ_STR(MSC(acme)->graph_scope, "https://graph.microsoft.com/.default");
    T_EQ_STR(MSC(demo)->graph_scope, "https://graph.microsoft.us/.default");
    T_EQ_INT(NALLOW(acme), 0);
    T_ASSERT(HTTPC(acme) == NULL);

    zeta = config_tenant(&cfg, "zeta");
    T_REQUIRE(zeta != NULL);
    T_EQ_INT((MSC(zeta) != NULL), 0);
    T_EQ_INT(NALLOW(zeta), 0);

    T_ASSERT(config_tenant(&cfg, "nope") == NULL);
    T_ASSERT(config_tenant(&cfg, "") == NULL);
    T_ASSERT(config_tenant(&cfg, "aaa") == NULL);
    T_ASSERT(config_tenant(&cfg, "zzz") == NULL);
    T_ASSERT(config_tenant(&cfg, NULL) == NULL);
    T_ASSERT(config_tenant(NULL, "demo") == NULL);
    config_free(&cfg);
    T_ASSERT(config_tenant(&cfg, "demo") == NULL); /* freed: empty */
    tmpconf_done(&t);
}

/* tenants.<id>.microsoft.poll: intervals per stream (left out: not polled), defaults for
 * the overlap, backfill and page size, and the bounds. */
static void
test_microsoft_poll(void)
{
    static const char *const bad[] = {
        "poll = { alerts = '2s' }",     /* under 5 s */
        "poll = { alerts = '2d' }",     /* over a day */
        "poll = { page_size = 0 }",     /* 1..1000 */
        "poll = { page_size = 5000 }",  /*  */
        "poll = { backfill = '100d' }", /* at most 90 days */
        "poll = { alert = '1m' }",      /* unknown key */
        "poll = { signins = true }",    /* a duration */
        "poll = 'every minute'",        /* a table */
    };
    struct tmpconf t;
    struct config cfg;
    const struct config_tenant *ten;
    char *err = NULL, *text;

    T_REQUIRE(tmpconf_init(&t) == 0);
    T_EQ_INT(load_text(&t,
                       "tenants = { a = { microsoft = { tenant_id = 'x', client_id = 'y',"
                       " client_secret = 's', poll = { alerts = '1m', risk_detections = 300,"
                       " signins = 0 } } },"
                       " b = { microsoft = { tenant_id = 'x', client_id = 'y',"
                       " client_secret = 's', poll = { incidents = '30s', overlap = '10m',"
                       " backfill = '7d', page_size = 1000 } } } }\n",
                       &cfg, &err),
             0);
    if (err != NULL) {
        fprintf(stderr, "    %s\n", err);
        free(err);
        err = NULL;
    }
    ten = config_tenant(&cfg, "a");
    T_REQUIRE(ten != NULL && MSC(ten) != NULL);
    T_ASSERT(MSC(ten)->poll.alerts == 60);
    T_ASSERT(MSC(ten)->poll.incidents == 0);
    T_ASSERT(MSC(ten)->poll.risk_detections == 300);
    T_ASSERT(MSC(ten)->poll.signins == 0);
    T_ASSERT(MSC(ten)->poll.overlap == 300);
    T_ASSERT(MSC(ten)->poll.backfill == 86400);
    T_EQ_INT(MSC(ten)->poll.page_size, 100);
    ten = config_tenant(&cfg, "b");
    T_REQUIRE(ten != NULL && MSC(ten) != NULL);
    T_ASSERT(MSC(ten)->poll.incidents == 30);
    T_ASSERT(MSC(ten)->poll.overlap == 600);
    T_ASSERT(MSC(ten)->poll.backfill == 7 * 86400);
    T_EQ_INT(MSC(ten)->poll.page_size, 1000);
    config_free(&cfg);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        text = xasprintf("tenants = { a = { microsoft = { tenant_id = 'x', client_id = 'y',"
                         " client_secret = 's', %s } } }\n",
                         bad[i]);
        if (load_text(&t, text, &cfg, &err) == 0) {
            T_FAIL_("accepted: %s", bad[i]);
            config_free(&cfg);
        } else {
            T_ASSERT(err != NULL && strstr(err, "poll") != NULL);
        }
        free(err);
        err = NULL;
        free(text);
    }
    tmpconf_done(&t);
}

static void
test_tenants_defaults(void)
{
    struct tmpconf t;
    struct config cfg;
    const struct config_tenant *ten;
    char *err = NULL;

    T_REQUIRE(tmpconf_init(&t) == 0);
    T_EQ_INT(load_text(&t, "connectors = {}\ntenants = {}\n", &cfg, &err), 0);
    check_defaults(&cfg, t.real);
    config_free(&cfg);
    T_EQ_INT(load_text(&t,
                       "tenants = { t1 = { http = { allow = {} } }, ['0-x'] = {\n"
                       "  microsoft = { tenant_id = 'x', client_id = 'y', client_secret = 's' },"
                       " dry_run = false } }\n",
                       &cfg, &err),
             0);
    T_REQUIRE(cfg.ntenants == 2);
    ten = config_tenant(&cfg, "t1");
    T_REQUIRE(ten != NULL);
    T_EQ_INT(ten->dry_run, 0);
    T_EQ_INT((MSC(ten) != NULL), 0);
    T_EQ_INT(NALLOW(ten), 0);
    ten = config_tenant(&cfg, "0-x");
    T_REQUIRE(ten != NULL);
    T_EQ_INT((MSC(ten) != NULL), 1);
    T_EQ_STR(MSC(ten)->authority, "https://login.microsoftonline.com");
    T_EQ_STR(MSC(ten)->graph, "https://graph.microsoft.com");
    T_EQ_STR(MSC(ten)->defender, "https://api.securitycenter.microsoft.com");
    T_EQ_STR(MSC(ten)->defender_scope, "https://api.securitycenter.microsoft.com/.default");
    config_free(&cfg);
    /* a 63-character id is the longest */
    T_EQ_INT(load_text(&t,
                       "tenants = { ['a12345678901234567890123456789012345678901234567890123456789"
                       "-yz'] = {} }",
                       &cfg, &err),
             0);
    T_REQUIRE(cfg.ntenants == 1);
    T_EQ_INT(strlen(cfg.tenants[0].id), 63);
    config_free(&cfg);
    tmpconf_done(&t);
}

/* A file with a microsoft block whose body is ms (after the ids), for the error tests. */
static char *
ms_text(const char *ms)
{
    return xasprintf("tenants = {\n  demo = {\n    microsoft = {\n"
                     "      tenant_id = 'tid', client_id = 'cid',\n%s\n    },\n  },\n}\n",
                     ms);
}

static void
expect_ms_error(struct tmpconf *t, const char *ms, const char *want)
{
    char *text = ms_text(ms);

    expect_error(t, text, want);
    free(text);
}

/* The microsoft block with ms loads; its graph URL is returned in graph (malloc'd). */
static int
load_ms(struct tmpconf *t, const char *ms, char **graph)
{
    struct config cfg;
    char *err = NULL;
    char *text = ms_text(ms);
    int rc = load_text(t, text, &cfg, &err);

    free(text);
    if (rc == -1) {
        fprintf(stderr, "    %s\n", err);
        free(err);
        return -1;
    }
    *graph = xstrdup(MSC(&cfg.tenants[0])->graph);
    config_free(&cfg);
    return 0;
}

static void
test_tenants_errors(void)
{
    struct tmpconf t;
    char *want;

    T_REQUIRE(tmpconf_init(&t) == 0);
    /* an unknown nested key names its path and line */
    want = xasprintf("%s:14: tenants.demo.microsoft.client_secert: unknown setting", t.path);
    {
        char *text = xstrdup(tenants_text);
        char *p = strstr(text, "client_secret");

        T_REQUIRE(p != NULL);
        memcpy(p, "client_secert", 13);
        expect_error(&t, text, want);
        free(text);
    }
    free(want);
    want = xasprintf("%s:4: tenants.demo.bogus: unknown setting", t.path);
    expect_error(&t, "log = {}\ntenants = {\n  demo = {\n    bogus = 1,\n  },\n}\n", want);
    free(want);
    want = xasprintf("%s:4: tenants.acme-corp.dryrun: unknown setting", t.path);
    expect_error(&t,
                 "tenants = {\n  demo = { dry_run = true },\n  [\"acme-corp\"] = {\n"
                 "    dryrun = true,\n  },\n}\n",
                 want);
    free(want);
    want = xasprintf("%s:3: tenants.demo.http.deny: unknown setting", t.path);
    expect_error(&t, "tenants = {\n  demo = {\n    http = { deny = {} },\n  },\n}\n", want);
    free(want);
    /* the line of the right tenant's block, though both have one */
    want = xasprintf("%s:6: tenants.b.microsoft: client_id is required", t.path);
    expect_error(
        &t,
        "tenants = {\n"
        "  a = { microsoft = { tenant_id = 't', client_id = 'c', client_secret = 's' } },\n"
        "  b = {\n"
        "    dry_run = true,\n"
        "    -- microsoft = { },\n"
        "    microsoft = {\n"
        "      tenant_id = 't', client_secret = 's',\n"
        "    },\n"
        "  },\n"
        "}\n",
        want);
    free(want);
    expect_error(&t,
                 "tenants = { demo = { microsoft = { client_id = 'c', client_secret = 's' } } }",
                 "tenants.demo.microsoft: tenant_id is required");
    expect_ms_error(&t, "client_secret = 's', certificate = 'c.pem', private_key = 'k.pem'",
                    "tenants.demo.microsoft: set either client_secret or certificate and "
                    "private_key, not both");
    expect_ms_error(&t, "client_secret = 's', private_key = 'k.pem'", "not both");
    expect_ms_error(&t, "", "tenants.demo.microsoft: a credential is required");
    expect_ms_error(&t, "certificate = 'c.pem'",
                    "tenants.demo.microsoft: certificate and private_key must be set together");
    expect_ms_error(&t, "private_key = 'k.pem'", "must be set together");
    expect_ms_error(&t, "client_secret = ''", "tenants.demo.microsoft.client_secret: expected");
    expect_ms_error(&t, "client_secret = 42", "client_secret: expected a string, got a number");
    expect_error(&t,
                 "tenants = { demo = { microsoft = { tenant_id = 'a/b', client_id = 'c',"
                 " client_secret = 's' } } }",
                 "tenants.demo.microsoft.tenant_id: expected an id");
    expect_error(&t,
                 "tenants = { demo = { microsoft = { tenant_id = 'a', client_id = 'c d',"
                 " client_secret = 's' } } }",
                 "tenants.demo.microsoft.client_id: expected an id");
    expect_error(&t, "tenants = { demo = { microsoft = 'x' } }",
                 "tenants.demo.microsoft: expected a table, got a string");
    expect_ms_error(&t, "client_secret = 's', defender_scope = 'a b'",
                    "tenants.demo.microsoft.defender_scope: expected a scope");
    /* URLs */
    expect_ms_error(&t, "client_secret = 's', graph = 'ftp://graph.microsoft.com'",
                    "tenants.demo.microsoft.graph: expected a URL starting with https://");
    expect_ms_error(&t, "client_secret = 's', graph = 'graph.microsoft.com'",
                    "expected a URL starting with https://");
    expect_ms_error(&t, "client_secret = 's', authority = 'http://login.microsoftonline.com'",
                    "tenants.demo.microsoft.authority: plain http:// is only allowed for "
                    "loopback hosts");
    expect_ms_error(&t, "client_secret = 's', graph = 'http://128.0.0.1'", "plain http://");
    expect_ms_error(&t, "client_secret = 's', graph = 'http://localhost.example.com'",
                    "plain http://");
    expect_ms_error(&t, "client_secret = 's', graph = 'https://'", "expected a URL with a host");
    expect_ms_error(&t, "client_secret = 's', graph = 'https://u@graph.microsoft.com'",
                    "expected a URL with a host");
    expect_ms_error(&t, "client_secret = 's', graph = 'https://graph.microsoft.com:0'",
                    "expected a port from 1 to 65535");
    expect_ms_error(&t, "client_secret = 's', graph = 'https://graph.microsoft.com:x/'",
                    "expected a port");
    expect_ms_error(&t, "client_secret = 's', graph = 'https://graph.microsoft.com/a b'",
                    "without spaces");
    expect_ms_error(&t, "client_secret = 's', graph = 'https://graph.microsoft.com/?x=1'", "query");
    expect_ms_error(&t, "client_secret = 's', graph = 'https://graph.microsoft.com//'",
                    "without a trailing slash");
    expect_ms_error(&t, "client_secret = 's', graph = 'http://[::1]x/'",
                    "expected a URL with a host");
    expect_ms_error(&t, "client_secret = 's', graph = 'https://[::1'",
                    "expected a URL with a host");
    expect_error(&t, "connectors = { proxy = 'http://u p@proxy:1' }", "without spaces");
    /* tenant ids */
    expect_error(&t, "tenants = { Demo = {} }", "tenants.Demo: invalid tenant id");
    expect_error(&t, "tenants = { ['-x'] = {} }", "tenants.-x: invalid tenant id");
    expect_error(&t, "tenants = { ['a.b'] = {} }", "tenants.a.b: invalid tenant id");
    expect_error(&t, "tenants = { ['a_b'] = {} }", "invalid tenant id");
    expect_error(&t, "tenants = { [''] = {} }", "invalid tenant id");
    expect_error(&t, "tenants = { ['a\\0b'] = {} }", "invalid tenant id");
    expect_error(&t,
                 "tenants = { ['a12345678901234567890123456789012345678901234567890123456789"
                 "-xyz'] = {} }",
                 "invalid tenant id");
    /* with several bad ids, the smallest is named */
    expect_error(&t, "tenants = { ok = {}, Zb = {}, Za = {}, Zc = {} }",
                 "tenants.Za: invalid tenant id");
    expect_error(&t, "tenants = { { dry_run = true } }",
                 "tenants[1]: expected a tenant id as the key");
    expect_error(&t, "tenants = { Za = {}, [3] = {}, [true] = {}, [2] = {}, ok = {} }",
                 "tenants[2]: expected a tenant id as the key");
    expect_error(&t, "tenants = { demo = 1 }", "tenants.demo: expected a table, got a number");
    expect_error(&t, "tenants = 'demo'", "tenants: expected a table of tenants");
    expect_error(&t, "tenants = { demo = { dry_run = 'yes' } }",
                 "tenants.demo.dry_run: expected true or false, got a string");
    /* http.allow */
    want = xasprintf("%s:3: tenants.demo.http.allow[2]: expected a host name", t.path);
    expect_error(&t,
                 "tenants = {\n  demo = {\n    http = { allow = { 'a.example', "
                 "'https://b.example' } },\n  },\n}\n",
                 want);
    free(want);
    expect_error(&t, "tenants = { demo = { http = { allow = { 'b.example/path' } } } }",
                 "tenants.demo.http.allow[1]: expected a host name");
    expect_error(&t, "tenants = { demo = { http = { allow = { 'b example' } } } }",
                 "expected a host name");
    expect_error(&t, "tenants = { demo = { http = { allow = { 'b.example:80x' } } } }",
                 "expected a host name"); /* a port is allowed, but only digits */
    expect_error(&t, "tenants = { demo = { http = { allow = { '' } } } }", "expected a host name");
    expect_error(&t, "tenants = { demo = { http = { allow = { 42 } } } }", "expected a host name");
    expect_error(&t, "tenants = { demo = { http = { allow = { x = 'a.example' } } } }",
                 "tenants.demo.http.allow.x: expected a list of host names");
    expect_error(&t, "tenants = { demo = { http = { allow = 'a.example' } } }",
                 "tenants.demo.http.allow: expected a list of host names");
    expect_error(&t, "tenants = { demo = { http = { allow = { 'a', nil, 'c' } } } }",
                 "expected a list of host names");
    /* connectors */
    expect_error(&t, "connectors = { max_attempts = 0 }",
                 "connectors.max_attempts: expected a whole number from 1 to 20");
    expect_error(&t, "connectors = { max_attempts = 21 }", "from 1 to 20");
    expect_error(&t, "connectors = { breaker_threshold = 0 }",
                 "connectors.breaker_threshold: expected a whole number from 1 to 1000");
    expect_error(&t, "connectors = { breaker_cooldown = 'never' }", "connectors.breaker_cooldown:");
    expect_error(&t, "connectors = { max_attempts = 2.5 }", "from 1 to 20");
    expect_error(&t, "connectors = { timeout = 'soon' }",
                 "connectors.timeout: expected a duration");
    expect_error(&t, "connectors = { timeout = 0 }", "connectors.timeout: must be at least");
    expect_error(&t, "connectors = { proxy = 'socks5://p:1080' }",
                 "connectors.proxy: expected a URL starting with http:// or https://");
    expect_error(&t, "connectors = { proxy = 'http://p:3128/x' }", "without a path");
    expect_error(&t, "connectors = { proxy = 'http://:3128' }", "expected a URL with a host");
    expect_error(&t, "connectors = { key_file = 1 }", "connectors.key_file: expected a path");
    want = xasprintf("%s:3: connectors.max_attempt: unknown setting", t.path);
    expect_error(&t, "connectors = {\n  timeout = '1s',\n  max_attempt = 3,\n}\n", want);
    free(want);
    tmpconf_done(&t);
}

static void
test_tenants_urls_accepted(void)
{
    struct tmpconf t;
    struct config cfg;
    char *err = NULL;
    char *graph = NULL;

    T_REQUIRE(tmpconf_init(&t) == 0);
    /* one trailing slash is removed */
    T_REQUIRE(load_ms(&t, "client_secret = 's', graph = 'https://graph.microsoft.com/'", &graph) ==
              0);
    T_EQ_STR(graph, "https://graph.microsoft.com");
    free(graph);
    T_REQUIRE(load_ms(&t, "client_secret = 's', graph = 'https://g.example:8443/v1/'", &graph) ==
              0);
    T_EQ_STR(graph, "https://g.example:8443/v1");
    free(graph);
    /* plain http for loopback hosts only */
    T_REQUIRE(load_ms(&t, "client_secret = 's', graph = 'http://127.0.0.1:8081'", &graph) == 0);
    T_EQ_STR(graph, "http://127.0.0.1:8081");
    free(graph);
    T_REQUIRE(load_ms(&t, "client_secret = 's', graph = 'http://127.1.2.3/g/'", &graph) == 0);
    T_EQ_STR(graph, "http://127.1.2.3/g");
    free(graph);
    T_REQUIRE(load_ms(&t, "client_secret = 's', graph = 'http://[::1]:9/'", &graph) == 0);
    T_EQ_STR(graph, "http://[::1]:9");
    free(graph);
    T_REQUIRE(load_ms(&t, "client_secret = 's', graph = 'http://localhost'", &graph) == 0);
    T_EQ_STR(graph, "http://localhost");
    free(graph);
    /* proxies: http or https to any host, with credentials */
    T_EQ_INT(
        load_text(&t, "connectors = { proxy = 'https://u:p@proxy.example.jp:8443/' }", &cfg, &err),
        0);
    T_EQ_STR(cfg.connectors.proxy, "https://u:p@proxy.example.jp:8443");
    config_free(&cfg);
    T_EQ_INT(load_text(&t, "connectors = { proxy = 'http://10.0.0.1:3128' }", &cfg, &err), 0);
    T_EQ_STR(cfg.connectors.proxy, "http://10.0.0.1:3128");
    config_free(&cfg);
    T_EQ_INT(load_text(&t, "connectors = { max_attempts = 1, timeout = 0.5 }", &cfg, &err), 0);
    T_EQ_INT(cfg.connectors.max_attempts, 1);
    T_ASSERT(cfg.connectors.timeout == 0.5);
    config_free(&cfg);
    T_EQ_INT(load_text(&t, "connectors = { max_attempts = 20 }", &cfg, &err), 0);
    T_EQ_INT(cfg.connectors.max_attempts, 20);
    config_free(&cfg);
    T_EQ_INT(
        load_text(&t, "tenants = { d = { http = { allow = { '10.1.2.3', '[::1]', 'a-b.c_d' } } } }",
                  &cfg, &err),
        0);
    T_REQUIRE(cfg.ntenants == 1 && NALLOW(&cfg.tenants[0]) == 3);
    T_EQ_STR(HTTPC(&cfg.tenants[0])->allow[1], "[::1]");
    config_free(&cfg);
    /* a port per entry: host:port, [v6]:port */
    T_EQ_INT(load_text(&t,
                       "tenants = { d = { http = { allow = { 'a.example:8443', '[::1]:9', "
                       "'10.0.0.1:65535' } } } }",
                       &cfg, &err),
             0);
    T_REQUIRE(NALLOW(&cfg.tenants[0]) == 3);
    T_EQ_STR(HTTPC(&cfg.tenants[0])->allow[1], "[::1]:9");
    config_free(&cfg);
    expect_error(&t, "tenants = { d = { http = { allow = { 'a.example:0' } } } }",
                 "expected a host name");
    expect_error(&t, "tenants = { d = { http = { allow = { 'a.example:65536' } } } }",
                 "expected a host name");
    expect_error(&t, "tenants = { d = { http = { allow = { 'a.example:' } } } }",
                 "expected a host name");
    expect_error(&t, "tenants = { d = { http = { allow = { 'a:b:c' } } } }",
                 "expected a host name");
    tmpconf_done(&t);
}

static void
test_tenants_relative_paths(void)
{
    struct tmpconf t;
    struct config cfg;
    const struct config_tenant *ten;
    char *err = NULL;
    char *want;

    T_REQUIRE(tmpconf_init(&t) == 0);
    T_EQ_INT(load_text(&t,
                       "connectors = { key_file = 'keys/secret.key', ca_file = './ca.pem' }\n"
                       "tenants = { demo = { microsoft = { tenant_id = 't', client_id = 'c',\n"
                       "  certificate = 'certs/demo.pem', private_key = './certs/demo.key' } } }\n",
                       &cfg, &err),
             0);
    want = xasprintf("%s/keys/secret.key", t.real);
    T_EQ_STR(cfg.connectors.key_file, want);
    free(want);
    want = xasprintf("%s/ca.pem", t.real);
    T_EQ_STR(cfg.connectors.ca_file, want);
    free(want);
    ten = config_tenant(&cfg, "demo");
    T_REQUIRE(ten != NULL);
    want = xasprintf("%s/certs/demo.pem", t.real);
    T_EQ_STR(MSC(ten)->certificate, want);
    free(want);
    want = xasprintf("%s/certs/demo.key", t.real);
    T_EQ_STR(MSC(ten)->private_key, want);
    free(want);
    config_free(&cfg);
    tmpconf_done(&t);
}

/* Remove the "-- " in front of the lines of the commented-out tenants example of text. */
static void
uncomment_tenants(char *text)
{
    char *p = strstr(text, "\n-- tenants = {\n");
    char *out;

    if (p == NULL) {
        return;
    }
    out = ++p;
    while (*p != '\0') {
        char *eol = strchr(p, '\n');
        size_t n = eol != NULL ? (size_t)(eol - p + 1) : strlen(p);
        int last = strncmp(p, "-- }\n", 5) == 0;

        if (strncmp(p, "-- ", 3) == 0) {
            p += 3;
            n -= 3;
        }
        memmove(out, p, n);
        out += n;
        p += n;
        if (last) {
            break;
        }
    }
    memmove(out, p, strlen(p) + 1);
}

static void
test_write_default_roundtrip(void)
{
    struct tmpconf t;
    struct config cfg;
    struct stat st;
    char *err = NULL;
    char *text;

    T_REQUIRE(tmpconf_init(&t) == 0);
    T_EQ_INT(config_write_default(t.path, "/var/lib/kagari", "/var/lib/kagari/playbooks",
                                  "0.0.0.0:8443", &err),
             0);
    T_EQ_INT(stat(t.path, &st), 0);
    T_EQ_INT(st.st_mode & 0777, 0600);
    T_EQ_INT(config_load(t.path, &cfg, &err), 0);
    if (err != NULL) {
        fprintf(stderr, "    %s\n", err);
        free(err);
        err = NULL;
    }
    T_EQ_STR(cfg.data_dir, "/var/lib/kagari");
    T_EQ_STR(cfg.playbook_dir, "/var/lib/kagari/playbooks");
    T_EQ_STR(cfg.intake.listen, "0.0.0.0:8443");
    check_defaults(&cfg, NULL);
    config_free(&cfg);
    /* every key is there, with a comment */
    text = util_read_file(t.path, 1 << 20, NULL, &err);
    T_REQUIRE(text != NULL);
    T_CONTAINS(text, "max_queued_runs = 100000");
    T_CONTAINS(text, "max_conns_per_peer = 64");
    T_CONTAINS(text, "tenant_rate = 10000");
    T_CONTAINS(text, "tenant_burst = 20000");
    T_CONTAINS(text, "slice = \"5ms\"");
    T_CONTAINS(text, "-- cert = ");
    T_CONTAINS(text, "format = \"kv\"");
    T_CONTAINS(text, "connectors = {");
    T_CONTAINS(text, "key_file = \"secret.key\"");
    T_CONTAINS(text, "-- ca_file = ");
    T_CONTAINS(text, "-- proxy = ");
    T_CONTAINS(text, "timeout = \"30s\"");
    T_CONTAINS(text, "max_attempts = 5");
    T_CONTAINS(text, "-- tenants = {");
    T_CONTAINS(text, "`kagari secret encrypt`");
    T_CONTAINS(text, "--         dry_run = false");
    T_CONTAINS(text, "without sending anything");
    T_CONTAINS(text, "http module");
    T_CONTAINS(text, "--             -- certificate = ");
    T_CONTAINS(text, "--             -- private_key = ");
    /* the example, uncommented, loads */
    uncomment_tenants(text);
    T_ASSERT(strstr(text, "\ntenants = {\n") != NULL);
    unlink(t.path);
    T_EQ_INT(load_text(&t, text, &cfg, &err), 0);
    if (err != NULL) {
        fprintf(stderr, "    %s\n", err);
        free(err);
        err = NULL;
    } else {
        const struct config_tenant *ten = config_tenant(&cfg, "demo");

        T_EQ_INT(cfg.ntenants, 1);
        T_REQUIRE(ten != NULL);
        T_EQ_INT(ten->dry_run, 0);
        T_EQ_INT((MSC(ten) != NULL), 1);
        T_EQ_STR(MSC(ten)->client_secret, "enc:v1:...");
        T_ASSERT(MSC(ten)->certificate == NULL);
        T_EQ_STR(MSC(ten)->authority, "https://login.microsoftonline.com");
        T_EQ_STR(MSC(ten)->defender_scope, "https://api.securitycenter.microsoft.com/.default");
        T_EQ_INT(NALLOW(ten), 2);
        config_free(&cfg);
    }
    free(text);
    unlink(t.path);
    /* NULL values: the defaults, relative to the file */
    T_EQ_INT(config_write_default(t.path, NULL, NULL, NULL, &err), 0);
    T_EQ_INT(config_load(t.path, &cfg, &err), 0);
    check_defaults(&cfg, t.real);
    config_free(&cfg);
    unlink(t.path);
    /* values that need quoting come back as written */
    T_EQ_INT(config_write_default(t.path, "/srv/a \"b\" \\c\nd", "pb", "127.0.0.1:1", &err), 0);
    T_EQ_INT(config_load(t.path, &cfg, &err), 0);
    T_EQ_STR(cfg.data_dir, "/srv/a \"b\" \\c\nd");
    config_free(&cfg);
    tmpconf_done(&t);
}

static void
test_write_default_no_overwrite(void)
{
    struct tmpconf t;
    char *err = NULL;
    char *text;

    T_REQUIRE(tmpconf_init(&t) == 0);
    T_EQ_INT(config_write_default(t.path, "/a", "/b", "127.0.0.1:1", &err), 0);
    T_EQ_INT(config_write_default(t.path, "/other", "/b", "127.0.0.1:1", &err), -1);
    T_CONTAINS(err, "already exists");
    free(err);
    err = NULL;
    text = util_read_file(t.path, 1 << 20, NULL, &err);
    T_REQUIRE(text != NULL);
    T_CONTAINS(text, "data_dir = \"/a\"");
    free(text);
    tmpconf_done(&t);
}

static void
test_missing_file_and_buffer(void)
{
    struct config cfg;
    char *err = NULL;

    T_EQ_INT(config_load("/nonexistent/kagari.conf.lua", &cfg, &err), -1);
    T_CONTAINS(err, "/nonexistent/kagari.conf.lua");
    free(err);
    err = NULL;
    T_EQ_INT(config_load_buffer("log = { level = 'warn' }", 24, "/tmp/x.conf.lua", &cfg, &err), 0);
    T_EQ_INT(cfg.log.level, KG_LOG_WARN);
    T_EQ_STR(cfg.path, "/tmp/x.conf.lua");
    config_free(&cfg);
    T_EQ_INT(config_load_buffer("x = 1", 5, "/no/such/dir/x.conf.lua", &cfg, &err), -1);
    T_CONTAINS(err, "cannot resolve");
    free(err);
}

/* CONFIG_LIST: a plug-in block's list of tables, each element filled and checked by
 * its fields; keys, holes, wrong element types and unknown element keys refused with
 * the element's path. */
struct list_item {
    char *name;
    double wait;
};
struct list_conf {
    struct list_item *items;
    size_t nitems;
};
static const struct config_field list_item_fields[] = {
    { "name", CONFIG_STRING, offsetof(struct list_item, name), 0, 0, NULL, 0 },
    { "wait", CONFIG_DURATION, offsetof(struct list_item, wait), 1, 60, NULL, 0 },
    CONFIG_FIELDS_END,
};
static const struct config_field list_fields[] = {
    { "items", CONFIG_LIST, offsetof(struct list_conf, items), 0, sizeof(struct list_item),
      list_item_fields, offsetof(struct list_conf, nitems) },
    CONFIG_FIELDS_END,
};
static const struct config_section list_section = {
    "listtest", list_fields, sizeof(struct list_conf), NULL, NULL,
};

static void
test_list_of_tables(void)
{
    static const char *const bad[][2] = {
        { "tenants = { a = { listtest = { items = { x = { name = 'a' } } } } }", "items.x" },
        { "tenants = { a = { listtest = { items = { [1] = { name = 'a' }, [3] = {} } } } }",
          "holes" },
        { "tenants = { a = { listtest = { items = { 'a' } } } }", "items[1]" },
        { "tenants = { a = { listtest = { items = { {}, { nope = 1 } } } } }", "items[2].nope" },
        { "tenants = { a = { listtest = { items = { { wait = 0.5 } } } } }", "items[1].wait" },
        { "tenants = { a = { listtest = { items = 'x' } } }", "list of tables" },
    };
    struct tmpconf t;
    struct config cfg;
    const struct list_conf *lc;
    char *err = NULL;

    config_add_section(&list_section);
    T_REQUIRE(tmpconf_init(&t) == 0);
    T_EQ_INT(load_text(&t,
                       "tenants = { a = { listtest = { items = { { name = 'x', wait = '2s' },"
                       " { name = 'y' } } } } }",
                       &cfg, &err),
             0);
    lc = config_tenant_block(config_tenant(&cfg, "a"), &list_section);
    T_REQUIRE(lc != NULL);
    T_EQ_INT(lc->nitems, 2);
    T_EQ_STR(lc->items[0].name, "x");
    T_ASSERT(lc->items[0].wait == 2);
    T_EQ_STR(lc->items[1].name, "y");
    T_ASSERT(lc->items[1].wait == 0);
    config_free(&cfg);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        T_EQ_INT(load_text(&t, bad[i][0], &cfg, &err), -1);
        T_CONTAINS(err, bad[i][1]);
        free(err);
        err = NULL;
    }
    tmpconf_done(&t);
}

/* The blob poller's tenant block: what it requires and refuses, with the path. */
static void
test_blob_block(void)
{
    struct tmpconf t;
    struct config cfg;
    char *err = NULL;
    static const char good[] =
        "tenants = { t1 = { blob = { account_url = 'https://acct.blob.core.windows.net/',\n"
        "  containers = { 'insights-logs-signinlogs', 'insights-activity-logs' },\n"
        "  sas = 'sv=2021-08-06&sp=rl&sig=x', every = '30s', chunk = '1MiB',\n"
        "  prefix = 'tenantId=', max_age = '90d' } } }\n";

    T_REQUIRE(tmpconf_init(&t) == 0);
    T_EQ_INT(load_text(&t, good, &cfg, &err), 0);
    T_ASSERT(config_tenant(&cfg, "t1") != NULL);
    config_free(&cfg);
    expect_error(&t, "tenants = { t1 = { blob = { containers = { 'insights-logs-x' } } } }",
                 "account_url: required");
    expect_error(&t, "tenants = { t1 = { blob = { account_url = 'https://a.example' } } }",
                 "containers: required");
    expect_error(&t,
                 "tenants = { t1 = { blob = { account_url = 'https://a.example',\n"
                 " containers = { 'Insights_Logs' } } } }",
                 "is not a container name");
    expect_error(&t,
                 "tenants = { t1 = { blob = { account_url = 'https://a.example',\n"
                 " containers = { 'insights--logs' } } } }",
                 "is not a container name");
    expect_error(&t,
                 "tenants = { t1 = { blob = { account_url = 'https://a.example',\n"
                 " containers = { 'abc', 'abc' } } } }",
                 "listed twice");
    expect_error(&t,
                 "tenants = { t1 = { blob = { account_url = 'http://a.example',\n"
                 " containers = { 'abc' } } } }",
                 "account_url");
    expect_error(&t,
                 "tenants = { t1 = { blob = { account_url = 'https://a.example',\n"
                 " containers = { 'abc' }, every = '0.5s' } } }",
                 "tenants.t1.blob.every");
    expect_error(&t,
                 "tenants = { t1 = { blob = { account_url = 'https://a.example',\n"
                 " containers = { 'abc' }, chunk = 100 } } }",
                 "tenants.t1.blob.chunk");
    expect_error(&t,
                 "tenants = { t1 = { blob = { account_url = 'https://a.example',\n"
                 " containers = { 'abc' }, sas = '' } } }",
                 "tenants.t1.blob.sas");
    expect_error(&t,
                 "tenants = { t1 = { blob = { account_url = 'https://a.example',\n"
                 " containers = { 'abc' }, max_age = '10m' } } }",
                 "tenants.t1.blob.max_age");
    expect_error(&t,
                 "tenants = { t1 = { blob = { account_url = 'https://a.example',\n"
                 " containers = { 'abc' }, polling = true } } }",
                 "polling");
    tmpconf_done(&t);
}

TEST_LIST = {
    { "blob_block", test_blob_block },
    { "list_of_tables", test_list_of_tables },
    { "defaults_from_empty_file", test_defaults_from_empty_file },
    { "every_key", test_every_key },
    { "sizes_and_durations", test_sizes_and_durations },
    { "unknown_key", test_unknown_key },
    { "wrong_type", test_wrong_type },
    { "syntax_error", test_syntax_error },
    { "runaway_file_stopped", test_runaway_file_stopped },
    { "no_functions", test_no_functions },
    { "locals_and_operators", test_locals_and_operators },
    { "relative_paths", test_relative_paths },
    { "write_default_roundtrip", test_write_default_roundtrip },
    { "write_default_no_overwrite", test_write_default_no_overwrite },
    { "missing_file_and_buffer", test_missing_file_and_buffer },
    { "tenants_full", test_tenants_full },
    { "microsoft_poll", test_microsoft_poll },
    { "tenants_defaults", test_tenants_defaults },
    { "tenants_errors", test_tenants_errors },
    { "tenants_urls_accepted", test_tenants_urls_accepted },
    { "tenants_relative_paths", test_tenants_relative_paths },
    { NULL, NULL },
};
