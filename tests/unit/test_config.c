/* test_config.c: kagari.conf.lua: defaults, every key, both forms of sizes and durations,
 * errors with file:line, runaway files, relative paths and the default file. */
#include "engine/config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/log.h"
#include "tests/unit/test.h"

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
    T_ASSERT(cfg->intake.header_timeout == 10);
    T_ASSERT(cfg->intake.body_timeout == 30);
    T_ASSERT(cfg->intake.idle_timeout == 60);
    T_EQ_INT(cfg->intake.max_queued_runs, 100000);
    T_ASSERT(cfg->intake.tls_cert == NULL);
    T_ASSERT(cfg->intake.tls_key == NULL);
    T_EQ_INT(cfg->runs.memory, 256 << 20);
    T_EQ_INT(cfg->runs.instructions, 100000000);
    T_ASSERT(cfg->runs.timeout == 86400);
    T_ASSERT(cfg->runs.slice_ms == 5);
    T_EQ_INT(cfg->log.level, LOG_INFO);
    T_EQ_INT(cfg->log.json, 0);
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
                       "  max_queued_runs = 500,\n"
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
    T_EQ_STR(cfg.intake.tls_cert, "/etc/k/cert.pem");
    T_EQ_STR(cfg.intake.tls_key, "/etc/k/key.pem");
    T_EQ_INT(cfg.runs.memory, 64 << 20);
    T_EQ_INT(cfg.runs.instructions, 5000000);
    T_ASSERT(cfg.runs.timeout == 7200);
    T_ASSERT(cfg.runs.slice_ms == 10);
    T_EQ_INT(cfg.log.level, LOG_DEBUG);
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
    expect_error(&t, "intake = { max_body = {} }", "expected a size such as \"4MiB\", got a table");
    expect_error(&t, "log = 'debug'", "log: expected a table, got a string");
    expect_error(&t, "log = { level = 'loud' }", "log.level: expected \"debug\"");
    expect_error(&t, "log = { format = 'xml' }", "log.format: expected \"kv\" or \"json\"");
    expect_error(&t, "data_dir = 42", "data_dir: expected a path (a string), got a number");
    expect_error(&t, "data_dir = ''", "data_dir: expected a path");
    expect_error(&t, "intake = { listen = 'nope' }", "intake.listen: expected \"host:port\"");
    expect_error(&t, "intake = { listen = 'h:99999' }", "port from 0 to 65535");
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
    T_CONTAINS(text, "slice = \"5ms\"");
    T_CONTAINS(text, "-- cert = ");
    T_CONTAINS(text, "format = \"kv\"");
    free(text);
    unlink(t.path);
    /* NULL values: the defaults, relative to the file */
    T_EQ_INT(config_write_default(t.path, NULL, NULL, NULL, &err), 0);
    T_EQ_INT(config_load(t.path, &cfg, &err), 0);
    check_defaults(&cfg, t.real);
    config_free(&cfg);
    unlink(t.path);
    /* values that need quoting come back as written */
    T_EQ_INT(config_write_default(t.path, "/srv/a \"b\" \\c\nd", "pb", "h:1", &err), 0);
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
    T_EQ_INT(cfg.log.level, LOG_WARN);
    T_EQ_STR(cfg.path, "/tmp/x.conf.lua");
    config_free(&cfg);
    T_EQ_INT(config_load_buffer("x = 1", 5, "/no/such/dir/x.conf.lua", &cfg, &err), -1);
    T_CONTAINS(err, "cannot resolve");
    free(err);
}

TEST_LIST = {
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
    { NULL, NULL },
};
