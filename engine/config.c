/* config.c: kagari.conf.lua, evaluated in a throwaway data-only sandbox and mapped
 * onto struct config, with every unknown key and wrong type reported as file:line. */
#include "engine/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "engine/log.h"
#include "engine/sandbox.h"

#define CONFIG_MAX_FILE (1u << 20)      /* bytes of kagari.conf.lua */
#define CONFIG_MEMORY (8u << 20)        /* the evaluating state's memory cap */
#define CONFIG_HEADROOM (1u << 20)      /* more memory for reading the result */
#define CONFIG_INSTRUCTIONS 10000000ULL /* an endless loop is stopped after these */

#define CONFIG_CHUNK "config" /* chunk name; its "config:" prefix is replaced by the path */

/* What the mapping step works with. */
struct config_ctx {
    const char *text; /* the file's text, to find the line of a nested key */
    size_t len;
    const char *name; /* the file, for messages */
    const char *dir;  /* its folder, absolute */
    struct config *cfg;
    char *base; /* what field offsets count from: cfg, the tenant or a plug-in block */
    struct config_tenant *tenant;       /* the tenant being mapped */
    struct config_field *tenant_fields; /* its own fields, then one per plug-in section */
    struct config_field *top_fields;    /* the file's: the core's, then the plug-ins' */
    char *err;                          /* the first problem found */
};

static const struct config_field config_tls_fields[] = {
    { "cert", CONFIG_PATH, offsetof(struct config, intake.tls_cert), 0, 0, NULL, 0 },
    { "key", CONFIG_PATH, offsetof(struct config, intake.tls_key), 0, 0, NULL, 0 },
    { NULL, 0, 0, 0, 0, NULL, 0 },
};

static const struct config_field config_intake_fields[] = {
    { "listen", CONFIG_LISTEN, offsetof(struct config, intake.listen), 0, 0, NULL, 0 },
    { "max_body", CONFIG_SIZE, offsetof(struct config, intake.max_body), 1024, 0, NULL, 0 },
    { "max_header", CONFIG_SIZE, offsetof(struct config, intake.max_header), 1024, 0, NULL, 0 },
    { "max_conns", CONFIG_INT, offsetof(struct config, intake.max_conns), 1, 1000000, NULL, 0 },
    { "max_conns_per_peer", CONFIG_INT, offsetof(struct config, intake.max_conns_per_peer), 1,
      1000000, NULL, 0 },
    { "tenant_rate", CONFIG_INT, offsetof(struct config, intake.tenant_rate), 0, 100000000, NULL,
      0 },
    { "tenant_burst", CONFIG_INT, offsetof(struct config, intake.tenant_burst), 1, 100000000, NULL,
      0 },
    { "header_timeout", CONFIG_DURATION, offsetof(struct config, intake.header_timeout), 0.001, 0,
      NULL, 0 },
    { "body_timeout", CONFIG_DURATION, offsetof(struct config, intake.body_timeout), 0.001, 0, NULL,
      0 },
    { "idle_timeout", CONFIG_DURATION, offsetof(struct config, intake.idle_timeout), 0.001, 0, NULL,
      0 },
    { "max_queued_runs", CONFIG_INT, offsetof(struct config, intake.max_queued_runs), 1, INT_MAX,
      NULL, 0 },
    { "parse_threads", CONFIG_INT, offsetof(struct config, intake.parse_threads), 0, 64, NULL, 0 },
    { "parse_queue", CONFIG_SIZE, offsetof(struct config, intake.parse_queue), 1024, 0, NULL, 0 },
    { "tls", CONFIG_TABLE, 0, 0, 0, config_tls_fields, 0 },
    { NULL, 0, 0, 0, 0, NULL, 0 },
};

static const struct config_field config_runs_fields[] = {
    { "memory", CONFIG_SIZE, offsetof(struct config, runs.memory), 1 << 20, 0, NULL, 0 },
    { "instructions", CONFIG_COUNT, offsetof(struct config, runs.instructions), 1000, 1e18, NULL,
      0 },
    { "timeout", CONFIG_DURATION, offsetof(struct config, runs.timeout), 0.001, 0, NULL, 0 },
    { "slice", CONFIG_SLICE, offsetof(struct config, runs.slice_ms), 0, 0, NULL, 0 },
    { NULL, 0, 0, 0, 0, NULL, 0 },
};

static const struct config_field config_store_fields[] = {
    { "wal_warn", CONFIG_SIZE, offsetof(struct config, store.wal_warn), 4096, 0, NULL, 0 },
    { NULL, 0, 0, 0, 0, NULL, 0 },
};

static const struct config_field config_log_fields[] = {
    { "level", CONFIG_LEVEL, offsetof(struct config, log.level), 0, 0, NULL, 0 },
    { "format", CONFIG_FORMAT, offsetof(struct config, log.json), 0, 0, NULL, 0 },
    { NULL, 0, 0, 0, 0, NULL, 0 },
};

static const struct config_field config_connectors_fields[] = {
    { "key_file", CONFIG_PATH, offsetof(struct config, connectors.key_file), 0, 0, NULL, 0 },
    { "ca_file", CONFIG_PATH, offsetof(struct config, connectors.ca_file), 0, 0, NULL, 0 },
    { "proxy", CONFIG_PROXY, offsetof(struct config, connectors.proxy), 0, 0, NULL, 0 },
    { "timeout", CONFIG_DURATION, offsetof(struct config, connectors.timeout), 0.001, 0, NULL, 0 },
    { "max_attempts", CONFIG_INT, offsetof(struct config, connectors.max_attempts), 1, 20, NULL,
      0 },
    { "rate_limits", CONFIG_BOOL, offsetof(struct config, connectors.rate_limits), 0, 0, NULL, 0 },
    { "breaker_threshold", CONFIG_INT, offsetof(struct config, connectors.breaker_threshold), 1,
      1000, NULL, 0 },
    { "breaker_cooldown", CONFIG_DURATION, offsetof(struct config, connectors.breaker_cooldown),
      0.001, 86400, NULL, 0 },
    { "retry_after_max", CONFIG_DURATION, offsetof(struct config, connectors.retry_after_max),
      0.001, 86400, NULL, 0 },
    { NULL, 0, 0, 0, 0, NULL, 0 },
};

/* The tables below are per tenant: their offsets are in struct config_tenant. */

/* A tenant's own settings; each registered plug-in section adds its block's key. */
static const struct config_field config_tenant_fields[] = {
    { "dry_run", CONFIG_BOOL, offsetof(struct config_tenant, dry_run), 0, 0, NULL, 0 },
    { NULL, 0, 0, 0, 0, NULL, 0 },
};

/* The plug-ins' per-tenant sections (config_add_section) and top-level ones. */
static const struct config_section **sections;
static size_t nsections;
static const struct config_section **globals;
static size_t nglobals;

static const struct config_field config_top_fields[] = {
    { "data_dir", CONFIG_PATH, offsetof(struct config, data_dir), 0, 0, NULL, 0 },
    { "playbook_dir", CONFIG_PATH, offsetof(struct config, playbook_dir), 0, 0, NULL, 0 },
    { "playbook_lib_dir", CONFIG_PATH, offsetof(struct config, playbook_lib_dir), 0, 0, NULL, 0 },
    { "intake", CONFIG_TABLE, 0, 0, 0, config_intake_fields, 0 },
    { "runs", CONFIG_TABLE, 0, 0, 0, config_runs_fields, 0 },
    { "store", CONFIG_TABLE, 0, 0, 0, config_store_fields, 0 },
    { "log", CONFIG_TABLE, 0, 0, 0, config_log_fields, 0 },
    { "connectors", CONFIG_TABLE, 0, 0, 0, config_connectors_fields, 0 },
    { "tenants", CONFIG_TENANTS, offsetof(struct config, tenants), 0, 0, config_tenant_fields,
      offsetof(struct config, ntenants) },
    { NULL, 0, 0, 0, 0, NULL, 0 },
};

static const char config_key_env = 'E';   /* registry: the globals the file set */
static const char config_key_lines = 'N'; /* registry: global name -> line of assignment */

/* ---- the file's environment ---- */

/* __newindex of the file's globals: note the line of the assignment, then store. */
static int
l_config_newindex(lua_State *L)
{
    lua_Debug ar;
    int line = 0;

    lua_settop(L, 3);
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar)) {
        line = ar.currentline;
    }
    lua_pushvalue(L, 2);
    lua_pushinteger(L, line);
    lua_rawset(L, lua_upvalueindex(1));
    lua_rawset(L, 1);
    return 0;
}

/* __index of the file's globals: there are no functions or libraries to read, so a
 * name never assigned is a mistake (os.execute, a misspelt helper). */
static int
l_config_index(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TSTRING) {
        return luaL_error(L,
                          "undeclared name '%s' (the configuration has no functions or "
                          "libraries; use local for helper values)",
                          lua_tostring(L, 2));
    }
    return luaL_error(L, "undeclared name");
}

/* Protected: give the chunk at 1 an environment that records assignment lines, run it,
 * and leave the environment and the lines in the registry. */
static int
l_config_run(lua_State *L)
{
    lua_newtable(L); /* 2: lines */
    lua_newtable(L); /* 3: env */
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, l_config_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, l_config_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, 3);
    lua_pushvalue(L, 2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &config_key_lines);
    lua_pushvalue(L, 3);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &config_key_env);
    lua_pushvalue(L, 3);
    if (lua_setupvalue(L, 1, 1) == NULL) {
        lua_pop(L, 1);
    }
    lua_settop(L, 1);
    lua_call(L, 0, 0);
    return 0;
}

/* ---- mapping ---- */

static int
config_ident_char(char ch)
{
    return ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9');
}

/* The line, from `from` to `to`, where "key =" (or "["key"] =", for keys that are not
 * names, such as tenant ids with a '-') appears outside a comment (the first such line, or
 * with last the last one), or 0. */
static int
config_find_line(const struct config_ctx *c, const char *key, int from, int to, int last)
{
    size_t klen = strlen(key);
    const char *p = c->text, *end = c->text + c->len;
    int found = 0;

    for (int line = 1; p < end && line <= to; line++) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *comment;

        if (eol == NULL) {
            eol = end;
        }
        comment = p;
        while (comment + 1 < eol && !(comment[0] == '-' && comment[1] == '-')) {
            comment++;
        }
        if (comment + 1 >= eol) {
            comment = eol;
        }
        for (const char *q = p; line >= from && klen > 0 && q + klen <= comment; q++) {
            const char *r = q + klen;
            char quote = q > p ? q[-1] : '\0';

            if (memcmp(q, key, klen) != 0) {
                continue;
            }
            if (quote == '"' || quote == '\'') {
                if (q - p < 2 || q[-2] != '[' || r + 1 >= comment || r[0] != quote || r[1] != ']') {
                    continue;
                }
                r += 2;
            } else if ((q > p && config_ident_char(q[-1])) ||
                       (r < comment && config_ident_char(*r))) {
                continue;
            }
            while (r < comment && (*r == ' ' || *r == '\t')) {
                r++;
            }
            if (r < comment && *r == '=' && (r + 1 >= comment || r[1] != '=')) {
                found = line;
                break;
            }
        }
        if (found != 0 && !last) {
            return found;
        }
        p = eol + 1;
    }
    return found;
}

/* Lua reports the line where an assignment ends: for a table over many lines, its
 * closing brace. Find instead where the top-level assignment of path starts and, for a
 * nested key, the line inside it that sets the key: each component of the path is looked
 * for from the line of the one before, so that "tenants.b.microsoft" finds b's microsoft
 * block, not a's (a heuristic on the text; when it finds nothing, Lua's line stands, and
 * a component not found leaves the line of the last one found). */
static int
config_refine_line(const struct config_ctx *c, const char *path, int line)
{
    size_t n = strcspn(path, ".[");
    char *key = xstrndup(path, n);
    int start = config_find_line(c, key, 1, line, 1);

    free(key);
    if (start == 0) {
        return line;
    }
    for (path += n; path[0] == '.'; path += n) {
        int at;

        path++;
        n = strcspn(path, ".[");
        key = xstrndup(path, n);
        at = config_find_line(c, key, start, line, 0);
        free(key);
        if (at == 0) {
            break;
        }
        start = at;
    }
    return start;
}

static int config_fail(struct config_ctx *c, int line, const char *path, const char *fmt, ...)
    KG_PRINTF(4, 5);

/* Record the first problem as "name:line: path: message" (no line when 0). Returns -1. */
static int
config_fail(struct config_ctx *c, int line, const char *path, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    if (c->err != NULL) {
        return -1;
    }
    if (line > 0) {
        line = config_refine_line(c, path, line);
    }
    va_start(ap, fmt);
    msg = xvasprintf(fmt, ap);
    va_end(ap);
    if (line > 0) {
        c->err = xasprintf("%s:%d: %s: %s", c->name, line, path, msg);
    } else {
        c->err = xasprintf("%s: %s: %s", c->name, path, msg);
    }
    free(msg);
    return -1;
}

/* The dotted path of key (at idx) under prefix, e.g. "intake.max_body" or "runs[1]". */
static char *
config_key_path(lua_State *L, int idx, const char *prefix)
{
    const char *dot = prefix[0] != '\0' ? "." : "";

    if (lua_type(L, idx) == LUA_TSTRING) {
        return xasprintf("%s%s%s", prefix, dot, lua_tostring(L, idx));
    }
    if (lua_isinteger(L, idx)) {
        return xasprintf("%s[%lld]", prefix, (long long)lua_tointeger(L, idx));
    }
    return xasprintf("%s[a %s key]", prefix, luaL_typename(L, idx));
}

/* Line of the top-level assignment of the key at idx, 0 when unknown. */
static int
config_line(lua_State *L, int idx)
{
    int line;

    idx = lua_absindex(L, idx);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &config_key_lines);
    lua_pushvalue(L, idx);
    lua_rawget(L, -2);
    line = (int)lua_tointeger(L, -1);
    lua_pop(L, 2);
    return line;
}

/* Refuse any key of the table at idx that fields does not list. line < 0: the table is
 * the top level, each key has its own line (the lowest one is reported). */
static int
config_check_keys(lua_State *L, struct config_ctx *c, int idx, const char *prefix,
                  const struct config_field *fields, int line)
{
    char *bad = NULL;
    int bad_line = 0;

    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int known = 0;

        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            for (const struct config_field *f = fields; f->key != NULL && !known; f++) {
                known = strcmp(f->key, lua_tostring(L, -1)) == 0;
            }
        }
        if (!known) {
            int l = line < 0 ? config_line(L, -1) : line;

            if (bad == NULL || (l > 0 && l < bad_line)) {
                free(bad);
                bad = config_key_path(L, -1, prefix);
                bad_line = l;
            }
            if (line >= 0) {
                lua_pop(L, 1);
                break;
            }
        }
    }
    if (bad == NULL) {
        return 0;
    }
    config_fail(c, bad_line, bad, "unknown setting");
    free(bad);
    return -1;
}

static int
config_get_size(lua_State *L, struct config_ctx *c, int line, const char *path,
                const struct config_field *f, size_t *out)
{
    double v;

    if (lua_type(L, -1) == LUA_TSTRING) {
        if (util_parse_size(lua_tostring(L, -1), out) == -1) {
            return config_fail(c, line, path, "expected a size such as \"4MiB\"");
        }
    } else if (lua_type(L, -1) == LUA_TNUMBER) {
        v = lua_tonumber(L, -1);
        if (!(v >= 0) || v != floor(v) || v > 9e15) {
            return config_fail(c, line, path, "expected a whole number of bytes");
        }
        *out = (size_t)v;
    } else {
        return config_fail(c, line, path, "expected a size such as \"4MiB\", got a %s",
                           luaL_typename(L, -1));
    }
    if ((double)*out < f->min) {
        return config_fail(c, line, path, "must be at least %.0f bytes", f->min);
    }
    return 0;
}

static int
config_get_duration(lua_State *L, struct config_ctx *c, int line, const char *path,
                    const struct config_field *f, double *out)
{
    if (lua_type(L, -1) == LUA_TSTRING) {
        if (util_parse_duration(lua_tostring(L, -1), out) == -1) {
            return config_fail(c, line, path, "expected a duration such as \"30s\" or \"15m\"");
        }
    } else if (lua_type(L, -1) == LUA_TNUMBER) {
        *out = lua_tonumber(L, -1);
        if (!(*out >= 0) || isinf(*out)) {
            return config_fail(c, line, path, "expected a duration in seconds (0 or more)");
        }
    } else {
        return config_fail(c, line, path, "expected a duration such as \"30s\", got a %s",
                           luaL_typename(L, -1));
    }
    if (*out < f->min) {
        return config_fail(c, line, path, "must be at least %gs", f->min);
    }
    return 0;
}

static int
config_get_number(lua_State *L, struct config_ctx *c, int line, const char *path,
                  const struct config_field *f, double *out)
{
    double v;

    if (lua_type(L, -1) != LUA_TNUMBER) {
        return config_fail(c, line, path, "expected a whole number, got a %s",
                           luaL_typename(L, -1));
    }
    v = lua_tonumber(L, -1);
    if (v != floor(v) || v < f->min || (f->max > 0 && v > f->max)) {
        return config_fail(c, line, path, "expected a whole number from %.0f to %.0f", f->min,
                           f->max);
    }
    *out = v;
    return 0;
}

/* A non-empty string without NUL bytes, copied into *out (the old value freed). */
static int
config_get_string(lua_State *L, struct config_ctx *c, int line, const char *path, const char *what,
                  char **out)
{
    size_t len;
    const char *s;

    if (lua_type(L, -1) != LUA_TSTRING) {
        return config_fail(c, line, path, "expected %s, got a %s", what, luaL_typename(L, -1));
    }
    s = lua_tolstring(L, -1, &len);
    if (len == 0 || strlen(s) != len) {
        return config_fail(c, line, path, "expected %s, got an empty or binary string", what);
    }
    free(*out);
    *out = xstrdup(s);
    return 0;
}

/* A path: absolute as given, relative ones against the configuration file's folder. */
static int
config_get_path(lua_State *L, struct config_ctx *c, int line, const char *path, char **out)
{
    char *s = NULL;
    const char *rel;

    if (config_get_string(L, c, line, path, "a path (a string)", &s) == -1) {
        return -1;
    }
    free(*out);
    if (s[0] == '/') {
        *out = s;
        return 0;
    }
    rel = s;
    while (rel[0] == '.' && rel[1] == '/') {
        rel += 2;
    }
    if (rel[0] == '\0' || strcmp(rel, ".") == 0) {
        *out = xstrdup(c->dir[0] != '\0' ? c->dir : "/");
    } else {
        *out = xasprintf("%s/%s", c->dir, rel);
    }
    free(s);
    return 0;
}

/* host:port with a port from 0 to 65535 ("127.0.0.1:8080", "[::1]:8443", ":8080"); port 0
 * picks a free port at start (the ready log line names it), for tests. */
static int
config_get_listen(lua_State *L, struct config_ctx *c, int line, const char *path, char **out)
{
    const char *colon;
    char *end;
    long port;

    if (config_get_string(L, c, line, path, "\"host:port\"", out) == -1) {
        return -1;
    }
    colon = strrchr(*out, ':');
    if (colon == NULL || colon[1] == '\0') {
        return config_fail(c, line, path, "expected \"host:port\" such as \"127.0.0.1:8080\"");
    }
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || errno != 0 || port < 0 || port > 65535 || colon[1] == '-' ||
        colon[1] == '+') {
        return config_fail(c, line, path, "expected \"host:port\" with a port from 0 to 65535");
    }
    {
        /* The host must be a numeric address (the listener does not resolve names). */
        size_t hl = (size_t)(colon - *out);
        char host[64];
        unsigned char a[16];

        if (hl >= sizeof(host)) {
            return config_fail(c, line, path, "expected a numeric IPv4 or [IPv6] address");
        }
        memcpy(host, *out, hl);
        host[hl] = '\0';
        if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
            host[hl - 1] = '\0';
            if (inet_pton(AF_INET6, host + 1, a) != 1) {
                return config_fail(c, line, path, "expected a numeric IPv4 or [IPv6] address");
            }
        } else if (hl > 0 && inet_pton(AF_INET, host, a) != 1) {
            return config_fail(c, line, path,
                               "expected a numeric IPv4 or [IPv6] address (not a host name)");
        }
    }
    return 0;
}

/* true or false. */
static int
config_get_bool(lua_State *L, struct config_ctx *c, int line, const char *path, int *out)
{
    if (lua_type(L, -1) != LUA_TBOOLEAN) {
        return config_fail(c, line, path, "expected true or false, got a %s", luaL_typename(L, -1));
    }
    *out = lua_toboolean(L, -1);
    return 0;
}

/* An id that is put into URLs and form bodies as is (a directory GUID or domain, an
 * application id): letters, digits, '.', '-' and '_' only, at most 255 of them. */
static int
config_get_name(lua_State *L, struct config_ctx *c, int line, const char *path, char **out)
{
    const char *msg = "expected an id such as \"11111111-2222-3333-4444-555555555555\" or a "
                      "domain (letters, digits, '.', '-' and '_')";

    if (config_get_string(L, c, line, path, "an id (a string)", out) == -1) {
        return -1;
    }
    if (strlen(*out) > 255) {
        return config_fail(c, line, path, "%s", msg);
    }
    for (const char *p = *out; *p != '\0'; p++) {
        if (!config_ident_char(*p) && *p != '.' && *p != '-') {
            return config_fail(c, line, path, "%s", msg);
        }
    }
    return 0;
}

/* Text without spaces or control characters (an OAuth scope such as ".../.default"). */
static int
config_get_scope(lua_State *L, struct config_ctx *c, int line, const char *path, char **out)
{
    if (config_get_string(L, c, line, path, "a scope (a string)", out) == -1) {
        return -1;
    }
    for (const unsigned char *p = (const unsigned char *)*out; *p != '\0'; p++) {
        if (*p <= ' ' || *p == 0x7f) {
            return config_fail(c, line, path,
                               "expected a scope such as \"https://api.example.com/.default\" (no "
                               "spaces)");
        }
    }
    return 0;
}

static int
config_host_char(char ch)
{
    return config_ident_char(ch) || ch == '.' || ch == '-';
}

/* A host name, an IPv4 address or a bracketed IPv6 address ("[::1]"), the whole of
 * s[0..n): at most 253 characters, no scheme, port, path or spaces. */
static int
config_host_valid(const char *s, size_t n)
{
    if (n == 0 || n > 253) {
        return 0;
    }
    if (s[0] == '[') {
        if (n < 3 || s[n - 1] != ']') {
            return 0;
        }
        for (size_t i = 1; i + 1 < n; i++) {
            char ch = s[i];

            if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                  (ch >= 'A' && ch <= 'F') || ch == ':' || ch == '.')) {
                return 0;
            }
        }
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        if (!config_host_char(s[i])) {
            return 0;
        }
    }
    return s[0] != '.' && s[0] != '-';
}

/* A host, optionally followed by ":port" (1 to 65535): "a.example", "a.example:8443",
 * "[::1]:8443". */
static int
config_host_port_valid(const char *s, size_t n)
{
    const char *colon = NULL;
    long port = 0;

    for (size_t i = n; i > 0; i--) {
        if (s[i - 1] == ':' || s[i - 1] == ']') {
            colon = s[i - 1] == ':' ? s + i - 1 : NULL;
            break;
        }
    }
    if (colon == NULL || (s[0] == '[' && colon[-1] != ']') ||
        (s[0] != '[' && memchr(s, ':', (size_t)(colon - s)) != NULL)) {
        return config_host_valid(s, n);
    }
    if (colon + 1 == s + n || s + n - (colon + 1) > 5) {
        return 0;
    }
    for (const char *p = colon + 1; p < s + n; p++) {
        if (*p < '0' || *p > '9') {
            return 0;
        }
        port = port * 10 + (*p - '0');
    }
    return port >= 1 && port <= 65535 && config_host_valid(s, (size_t)(colon - s));
}

/* Loopback hosts, where plain http:// is allowed (tests run local servers there):
 * 127.x.x.x, [::1] and localhost. */
static int
config_host_loopback(const char *s, size_t n)
{
    if ((n == 9 && strncasecmp(s, "localhost", 9) == 0) || (n == 5 && memcmp(s, "[::1]", 5) == 0)) {
        return 1;
    }
    if (n < 5 || memcmp(s, "127.", 4) != 0) {
        return 0;
    }
    for (size_t i = 4; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) {
            return 0;
        }
    }
    return 1;
}

/* A URL: http:// or https://, a host (a proxy may have "user:password@" before it), an
 * optional port from 1 to 65535, then an optional path without spaces, query or fragment.
 * Base URLs (proxy 0) must be https:// except for loopback hosts, since credentials and
 * tokens travel to them; a proxy may be either (the TLS to the service goes through it).
 * One trailing slash is removed: callers append "/v1.0/..." to base URLs. */
static int
config_get_url(lua_State *L, struct config_ctx *c, int line, const char *path, int proxy,
               char **out)
{
    const char *example = proxy ? "http://proxy.example.jp:3128" : "https://api.example.com";
    const char *s, *host, *end, *p;
    size_t len;
    int tls;

    if (config_get_string(L, c, line, path, "a URL (a string)", out) == -1) {
        return -1;
    }
    s = *out;
    if (strncmp(s, "https://", 8) == 0) {
        tls = 1;
        host = s + 8;
    } else if (strncmp(s, "http://", 7) == 0) {
        tls = 0;
        host = s + 7;
    } else {
        return config_fail(c, line, path, "expected a URL starting with %s such as \"%s\"",
                           proxy ? "http:// or https://" : "https://", example);
    }
    end = host + strcspn(host, "/");
    if (proxy) {
        for (p = host; p < end; p++) {
            if (*p == '@') {
                host = p + 1; /* after the credentials */
            }
        }
    }
    if (host[0] == '[') {
        p = memchr(host, ']', (size_t)(end - host));
        p = p != NULL ? p + 1 : end;
    } else {
        p = host + strcspn(host, ":/");
    }
    if (!config_host_valid(host, (size_t)(p - host))) {
        return config_fail(c, line, path, "expected a URL with a host name, such as \"%s\"",
                           example);
    }
    if (!tls && !proxy && !config_host_loopback(host, (size_t)(p - host))) {
        return config_fail(c, line, path,
                           "plain http:// is only allowed for loopback hosts (127.x, [::1], "
                           "localhost): use https://");
    }
    if (p[0] == ':') {
        char *pend;
        long port;

        errno = 0;
        port = strtol(p + 1, &pend, 10);
        if (!(p[1] >= '0' && p[1] <= '9') || errno != 0 || port < 1 || port > 65535 ||
            (*pend != '\0' && *pend != '/')) {
            return config_fail(c, line, path, "expected a port from 1 to 65535 after the host");
        }
        p = pend;
    }
    if (p[0] != '\0' && p[0] != '/') {
        return config_fail(c, line, path, "expected a URL with a host name, such as \"%s\"",
                           example);
    }
    for (const char *q = s; *q != '\0'; q++) {
        if ((unsigned char)*q <= ' ' || *q == 0x7f || (q >= p && strchr("?#\\", *q) != NULL)) {
            return config_fail(c, line, path,
                               "expected a URL without spaces, query (?) or fragment (#)");
        }
    }
    if (proxy && p[0] != '\0' && strcmp(p, "/") != 0) {
        return config_fail(c, line, path, "expected a proxy URL without a path, such as \"%s\"",
                           example);
    }
    len = strlen(s);
    if (s[len - 1] == '/') {
        (*out)[--len] = '\0';
        if (s[len - 1] == '/') {
            return config_fail(c, line, path, "expected a URL without a trailing slash");
        }
    }
    return 0;
}

/* An IPv4 or IPv6 address, or one with a /prefix length that fits it. */
static int
config_net_valid(const char *s, size_t n)
{
    char tmp[64];
    unsigned char bin[16];
    const char *slash;
    int max;

    if (n == 0 || n >= sizeof(tmp)) {
        return 0;
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    slash = strchr(tmp, '/');
    if (slash != NULL) {
        tmp[slash - tmp] = '\0';
    }
    if (inet_pton(AF_INET, tmp, bin) == 1) {
        max = 32;
    } else if (inet_pton(AF_INET6, tmp, bin) == 1) {
        max = 128;
    } else {
        return 0;
    }
    if (slash != NULL) {
        const char *d = slash + 1;
        int bits = 0;

        if (*d == '\0' || strlen(d) > 3) {
            return 0;
        }
        for (; *d != '\0'; d++) {
            if (*d < '0' || *d > '9') {
                return 0;
            }
            bits = bits * 10 + (*d - '0');
        }
        return bits <= max;
    }
    return 1;
}

/* A list of host names ({ "hooks.example.jp", "api.example.net" }), stored lowercased
 * into the char ** at f->offset and its length at f->count (the old list freed). Entries
 * are names, not URLs: no scheme, port, path or spaces. A CONFIG_NETS list is read the
 * same way, its entries IP addresses or CIDR subnets ({ "10.0.0.0/8", "192.0.2.53" }). */
static int
config_get_hosts(lua_State *L, struct config_ctx *c, int line, const char *path,
                 const struct config_field *f)
{
    char ***list = (char ***)(c->base + f->offset);
    size_t *count = (size_t *)(c->base + f->count);
    int nets = f->kind == CONFIG_NETS;
    lua_Unsigned n;
    size_t keys = 0;
    int idx;

    if (lua_type(L, -1) != LUA_TTABLE) {
        return config_fail(c, line, path, "expected a list of %s, got a %s",
                           nets ? "addresses such as { \"10.0.0.0/8\" }"
                                : "host names such as { \"hooks.example.jp\" }",
                           luaL_typename(L, -1));
    }
    idx = lua_absindex(L, -1);
    n = lua_rawlen(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 ||
            (lua_Unsigned)lua_tointeger(L, -1) > n) {
            char *bad = config_key_path(L, -1, path);

            lua_pop(L, 1);
            config_fail(c, line, bad, "expected a list of %s, without keys or holes",
                        nets ? "addresses" : "host names");
            free(bad);
            return -1;
        }
        keys++;
    }
    if (keys != n) {
        return config_fail(c, line, path, "expected a list of %s, without holes",
                           nets ? "addresses" : "host names");
    }
    for (size_t i = 0; i < *count; i++) {
        free((*list)[i]);
    }
    free(*list);
    *list = n > 0 ? xcalloc((size_t)n, sizeof(**list)) : NULL;
    *count = (size_t)n;
    for (size_t i = 0; i < (size_t)n; i++) {
        const char *s;
        size_t len;

        lua_rawgeti(L, idx, (lua_Integer)i + 1);
        s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        if (f->kind == CONFIG_STRINGS) {
            if (s == NULL || strlen(s) != len || len > CONFIG_STRINGS_ITEM_MAX) {
                char *bad = xasprintf("%s[%zu]", path, i + 1);

                lua_pop(L, 1);
                config_fail(c, line, bad, "expected a string of at most %d bytes",
                            CONFIG_STRINGS_ITEM_MAX);
                free(bad);
                return -1;
            }
            (*list)[i] = xstrdup(s);
            lua_pop(L, 1);
            continue;
        }
        if (s == NULL || strlen(s) != len ||
            !(nets ? config_net_valid(s, len) : config_host_port_valid(s, len))) {
            char *bad = xasprintf("%s[%zu]", path, i + 1);

            lua_pop(L, 1);
            config_fail(c, line, bad,
                        nets ? "expected an IP address or a CIDR subnet such as \"10.0.0.0/8\""
                             : "expected a host name such as \"hooks.example.jp\", with an "
                               "optional port (\"hooks.example.jp:8443\"; no scheme, path or "
                               "spaces)");
            free(bad);
            return -1;
        }
        (*list)[i] = xstrdup(s);
        for (char *p = (*list)[i]; *p != '\0'; p++) {
            if (*p >= 'A' && *p <= 'Z') {
                *p = (char)(*p - 'A' + 'a');
            }
        }
        lua_pop(L, 1);
    }
    return 0;
}

static int config_map_table(lua_State *L, struct config_ctx *c, int idx, const char *prefix,
                            const struct config_field *fields, int line);
static void config_fields_free(const struct config_field *fields, char *base);

/* A list of tables ({ { ... }, { ... } }): each element is a zeroed struct of f->max
 * bytes filled by f->fields. A list given again replaces the first one. */
static int
config_get_list(lua_State *L, struct config_ctx *c, int line, const char *path,
                const struct config_field *f)
{
    char **list = (char **)(c->base + f->offset);
    size_t *count = (size_t *)(c->base + f->count);
    size_t size = (size_t)f->max;
    char *saved = c->base;
    lua_Unsigned n;
    size_t keys = 0;
    int idx, rc = 0;

    if (lua_type(L, -1) != LUA_TTABLE) {
        return config_fail(c, line, path, "expected a list of tables { { ... }, ... }, got a %s",
                           luaL_typename(L, -1));
    }
    idx = lua_absindex(L, -1);
    n = lua_rawlen(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 ||
            (lua_Unsigned)lua_tointeger(L, -1) > n) {
            char *bad = config_key_path(L, -1, path);

            lua_pop(L, 1);
            config_fail(c, line, bad, "expected a list of tables, without keys or holes");
            free(bad);
            return -1;
        }
        keys++;
    }
    if (keys != n) {
        return config_fail(c, line, path, "expected a list of tables, without holes");
    }
    if (n > 256) {
        return config_fail(c, line, path, "at most 256 entries");
    }
    for (size_t i = 0; i < *count; i++) {
        config_fields_free(f->fields, *list + i * size);
    }
    free(*list);
    *list = n > 0 ? xcalloc((size_t)n, size) : NULL;
    *count = (size_t)n;
    for (size_t i = 0; i < (size_t)n && rc == 0; i++) {
        char *ep = xasprintf("%s[%zu]", path, i + 1);

        lua_rawgeti(L, idx, (lua_Integer)i + 1);
        if (lua_type(L, -1) != LUA_TTABLE) {
            rc = config_fail(c, line, ep, "expected a table, got a %s", luaL_typename(L, -1));
        } else {
            c->base = *list + i * size;
            rc = config_map_table(L, c, -1, ep, f->fields, line);
            c->base = saved;
        }
        lua_pop(L, 1);
        free(ep);
    }
    return rc;
}

/* Tenant ids name files and appear in URLs, so they are held to the store's rule:
 * [a-z0-9][a-z0-9-]{0,62}. */
static int
config_tenant_id_valid(const char *id, size_t len)
{
    if (len == 0 || len > 63 || strlen(id) != len || id[0] == '-') {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') || id[i] == '-')) {
            return 0;
        }
    }
    return 1;
}

static int
config_tenant_cmp(const void *a, const void *b)
{
    const struct config_tenant *ta = a, *tb = b;

    return strcmp(ta->id, tb->id);
}

/* Map one tenant's table (at the top of L) onto t, whose id is set. */
static int
config_map_tenant(lua_State *L, struct config_ctx *c, int line, const char *path,
                  const struct config_field *f, struct config_tenant *t)
{
    char *saved = c->base;
    char *tpath = xasprintf("%s.%s", path, t->id);
    int rc = -1;

    (void)f;
    if (lua_type(L, -1) != LUA_TTABLE) {
        config_fail(c, line, tpath, "expected a table, got a %s", luaL_typename(L, -1));
        goto out;
    }
    c->base = (char *)t;
    c->tenant = t;
    rc = config_map_table(L, c, -1, tpath, c->tenant_fields, line);
out:
    c->base = saved;
    c->tenant = NULL;
    free(tpath);
    return rc;
}

/* tenants = { <id> = { ... } }: one struct config_tenant per key into the array at
 * f->offset (its length at f->count), sorted by id since a Lua table has no order.
 * Keys that are not valid tenant ids are refused. With several bad keys, one that is not
 * a string goes first, then the smallest path, so that the message does not depend on
 * the table's internal (seeded) order. */
static int
config_get_tenants(lua_State *L, struct config_ctx *c, int line, const char *path,
                   const struct config_field *f)
{
    struct config_tenant **tenants = (struct config_tenant **)(c->base + f->offset);
    size_t *count = (size_t *)(c->base + f->count);
    char *bad = NULL;
    size_t n = 0, i;
    int idx, bad_kind = 0;

    if (lua_type(L, -1) != LUA_TTABLE) {
        return config_fail(c, line, path,
                           "expected a table of tenants keyed by id, such as { demo = { ... } }, "
                           "got a %s",
                           luaL_typename(L, -1));
    }
    idx = lua_absindex(L, -1);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int kind = lua_type(L, -2) != LUA_TSTRING; /* 1: not a string, 0: a string */
        const char *id;
        size_t len;

        lua_pop(L, 1);
        n++;
        if (kind == 0) {
            id = lua_tolstring(L, -1, &len);
            if (config_tenant_id_valid(id, len)) {
                continue;
            }
        }
        if (kind >= bad_kind) {
            char *p = config_key_path(L, -1, path);

            if (bad == NULL || kind > bad_kind || strcmp(p, bad) < 0) {
                free(bad);
                bad = p;
                bad_kind = kind;
            } else {
                free(p);
            }
        }
    }
    if (bad != NULL) {
        config_fail(c, line, bad,
                    bad_kind ? "expected a tenant id as the key, such as demo = { ... }"
                             : "invalid tenant id (lowercase letters, digits and '-', starting "
                               "with a letter or digit, at most 63 characters; write "
                               "[\"acme-corp\"] = { ... })");
        free(bad);
        return -1;
    }
    *tenants = n > 0 ? xcalloc(n, sizeof(**tenants)) : NULL;
    *count = n;
    i = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        (*tenants)[i++].id = xstrdup(lua_tostring(L, -1));
    }
    if (n > 1) {
        qsort(*tenants, n, sizeof(**tenants), config_tenant_cmp);
    }
    for (i = 0; i < n; i++) {
        int rc;

        lua_pushstring(L, (*tenants)[i].id);
        lua_rawget(L, idx);
        rc = config_map_tenant(L, c, line, path, f, &(*tenants)[i]);
        lua_pop(L, 1);
        if (rc == -1) {
            return -1;
        }
    }
    return 0;
}

/* A plug-in's block in the tenant being mapped: a zeroed struct filled by the section's
 * fields, then its own check. The block is added to the tenant before it is filled, so
 * that config_free frees what a failure left half done. */
static void *
block_add(struct config_block **blocks, size_t *n, const struct config_section *sec)
{
    void *conf = xcalloc(1, sec->size);

    *blocks = xrealloc(*blocks, (*n + 1) * sizeof(**blocks));
    (*blocks)[*n].section = sec;
    (*blocks)[*n].conf = conf;
    (*n)++;
    return conf;
}

static int
config_get_section(lua_State *L, struct config_ctx *c, int line, const char *path,
                   const struct config_section *sec, struct config_block **blocks, size_t *n)
{
    char *saved = c->base;
    char *msg = NULL;
    void *conf;
    int rc;

    if (lua_type(L, -1) != LUA_TTABLE) {
        return config_fail(c, line, path, "expected a table, got a %s", luaL_typename(L, -1));
    }
    conf = block_add(blocks, n, sec);
    c->base = conf;
    rc = config_map_table(L, c, -1, path, sec->fields, line);
    c->base = saved;
    if (rc == 0 && sec->check != NULL && sec->check(conf, &msg) == -1) {
        rc = config_fail(c, line, path, "%s", msg ? msg : "invalid");
    }
    free(msg);
    return rc;
}

/* Check and store the value at the top of L for field f. */
static int
config_map_value(lua_State *L, struct config_ctx *c, int line, const char *path,
                 const struct config_field *f)
{
    char *base = c->base;
    double d;
    const char *s;
    int level;

    switch (f->kind) {
    case CONFIG_PATH:
        return config_get_path(L, c, line, path, (char **)(base + f->offset));
    case CONFIG_LISTEN:
        return config_get_listen(L, c, line, path, (char **)(base + f->offset));
    case CONFIG_SIZE:
        return config_get_size(L, c, line, path, f, (size_t *)(base + f->offset));
    case CONFIG_DURATION:
        return config_get_duration(L, c, line, path, f, (double *)(base + f->offset));
    case CONFIG_SLICE:
        if (config_get_duration(L, c, line, path, f, &d) == -1) {
            return -1;
        }
        *(double *)(base + f->offset) = d * 1000;
        return 0;
    case CONFIG_INT:
        if (config_get_number(L, c, line, path, f, &d) == -1) {
            return -1;
        }
        *(int *)(base + f->offset) = (int)d;
        return 0;
    case CONFIG_COUNT:
        if (config_get_number(L, c, line, path, f, &d) == -1) {
            return -1;
        }
        *(uint64_t *)(base + f->offset) = (uint64_t)d;
        return 0;
    case CONFIG_LEVEL:
        s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        level = s != NULL ? log_level_from_name(s) : -1;
        if (level < 0) {
            return config_fail(c, line, path, "expected \"debug\", \"info\", \"warn\" or \"err\"");
        }
        *(int *)(base + f->offset) = level;
        return 0;
    case CONFIG_FORMAT:
        s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
        if (strcmp(s, "kv") != 0 && strcmp(s, "json") != 0) {
            return config_fail(c, line, path, "expected \"kv\" or \"json\"");
        }
        *(int *)(base + f->offset) = strcmp(s, "json") == 0;
        return 0;
    case CONFIG_TABLE:
        if (lua_type(L, -1) != LUA_TTABLE) {
            return config_fail(c, line, path, "expected a table, got a %s", luaL_typename(L, -1));
        }
        return config_map_table(L, c, -1, path, f->fields, line);
    case CONFIG_BOOL:
        return config_get_bool(L, c, line, path, (int *)(base + f->offset));
    case CONFIG_STRING:
        return config_get_string(L, c, line, path, "a string", (char **)(base + f->offset));
    case CONFIG_NAME:
        return config_get_name(L, c, line, path, (char **)(base + f->offset));
    case CONFIG_SCOPE:
        return config_get_scope(L, c, line, path, (char **)(base + f->offset));
    case CONFIG_URL:
        return config_get_url(L, c, line, path, 0, (char **)(base + f->offset));
    case CONFIG_PROXY:
        return config_get_url(L, c, line, path, 1, (char **)(base + f->offset));
    case CONFIG_HOSTS:
    case CONFIG_NETS:
    case CONFIG_STRINGS:
        return config_get_hosts(L, c, line, path, f);
    case CONFIG_TENANTS:
        return config_get_tenants(L, c, line, path, f);
    case CONFIG_LIST:
        return config_get_list(L, c, line, path, f);
    case CONFIG_SECTION:
        return config_get_section(L, c, line, path, sections[f->count], &c->tenant->blocks,
                                  &c->tenant->nblocks);
    case CONFIG_BLOCK:
        return config_get_section(L, c, line, path, globals[f->count], &c->cfg->blocks,
                                  &c->cfg->nblocks);
    }
    return config_fail(c, line, path, "internal error: unknown setting kind");
}

/* Map every field of the table at idx (line < 0: the top level, lines per key). */
static int
config_map_table(lua_State *L, struct config_ctx *c, int idx, const char *prefix,
                 const struct config_field *fields, int line)
{
    idx = lua_absindex(L, idx);
    if (config_check_keys(L, c, idx, prefix, fields, line) == -1) {
        return -1;
    }
    for (const struct config_field *f = fields; f->key != NULL; f++) {
        char *path;
        int l = line, rc;

        lua_pushstring(L, f->key);
        if (line < 0) {
            l = config_line(L, -1);
        }
        if (lua_rawget(L, idx) == LUA_TNIL) {
            lua_pop(L, 1);
            continue;
        }
        path = prefix[0] != '\0' ? xasprintf("%s.%s", prefix, f->key) : xstrdup(f->key);
        rc = config_map_value(L, c, l, path, f);
        free(path);
        lua_pop(L, 1);
        if (rc == -1) {
            return -1;
        }
    }
    return 0;
}

/* Protected: map the globals the file set onto c->cfg. Problems go to c->err; only a
 * memory error escapes (as a Lua error). */
static int
l_config_map(lua_State *L)
{
    struct config_ctx *c = lua_touserdata(L, 1);
    struct config *cfg = c->cfg;

    lua_rawgetp(L, LUA_REGISTRYINDEX, &config_key_env);
    if (config_map_table(L, c, -1, "", c->top_fields, -1) == -1) {
        return 0;
    }
    /* A top-level plug-in block the file leaves out still gets its defaults. */
    for (size_t i = 0; i < nglobals; i++) {
        char *msg = NULL;
        void *conf;

        if (config_block(cfg, globals[i]) != NULL) {
            continue;
        }
        conf = block_add(&cfg->blocks, &cfg->nblocks, globals[i]);
        if (globals[i]->check != NULL && globals[i]->check(conf, &msg) == -1) {
            config_fail(c, 0, globals[i]->key, "%s", msg ? msg : "invalid");
            free(msg);
            return 0;
        }
    }
    if ((cfg->intake.tls_cert == NULL) != (cfg->intake.tls_key == NULL)) {
        lua_pushliteral(L, "intake");
        config_fail(c, config_line(L, -1), "intake.tls",
                    "cert and key must be set together (or neither, for plain HTTP)");
    }
    return 0;
}

/* ---- loading ---- */

static void
config_defaults(struct config *cfg, const char *dir)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->data_dir = xasprintf("%s/data", dir);
    cfg->playbook_dir = xasprintf("%s/playbooks", dir);
    cfg->intake.listen = xstrdup("127.0.0.1:8080");
    cfg->intake.max_body = 4u << 20;
    cfg->intake.max_header = 16u << 10;
    cfg->intake.max_conns = 1024;
    cfg->intake.max_conns_per_peer = 64;
    cfg->intake.tenant_rate = 10000;
    cfg->intake.tenant_burst = 20000;
    cfg->intake.header_timeout = 10;
    cfg->intake.body_timeout = 30;
    cfg->intake.idle_timeout = 60;
    cfg->intake.max_queued_runs = 100000;
    {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

        cfg->intake.parse_threads = ncpu < 1 ? 1 : ncpu > 4 ? 4 : (int)ncpu;
    }
    cfg->intake.parse_queue = (size_t)64 << 20;
    cfg->runs.memory = (size_t)256 << 20;
    cfg->runs.instructions = 100000000;
    cfg->runs.timeout = 86400;
    cfg->runs.slice_ms = 5;
    cfg->store.wal_warn = (size_t)256 << 20;
    cfg->log.level = KG_LOG_INFO;
    cfg->log.json = 0;
    cfg->connectors.key_file = xasprintf("%s/secret.key", dir);
    cfg->connectors.timeout = 30;
    cfg->connectors.max_attempts = 5;
    cfg->connectors.rate_limits = 1;
    cfg->connectors.breaker_threshold = 5;
    cfg->connectors.breaker_cooldown = 30;
    cfg->connectors.retry_after_max = 300;
}

/* The absolute folder of the file name, or NULL with *errp. */
static char *
config_folder(const char *name, char **errp)
{
    const char *slash = strrchr(name, '/');
    char *folder, *abs;

    if (slash == NULL) {
        folder = xstrdup(".");
    } else if (slash == name) {
        folder = xstrdup("/");
    } else {
        folder = xstrndup(name, (size_t)(slash - name));
    }
    abs = realpath(folder, NULL);
    if (abs == NULL) {
        kg_err(errp, "%s: cannot resolve its folder %s: %s", name, folder, strerror(errno));
    }
    free(folder);
    if (abs != NULL && strcmp(abs, "/") == 0) {
        abs[0] = '\0'; /* so that "%s/data" gives "/data" */
    }
    return abs;
}

/* The message of a failed evaluation: "config:12: x" becomes "name:12: x"; anything
 * else (a memory error) gets "name: " in front. A spent budget (the sandbox's task on
 * L killed) is reported in the configuration's own words, without a line. */
static int
config_lua_error(lua_State *L, const char *name, char **errp)
{
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error";
    const struct sandbox_task *t = sandbox_task_of(L);
    size_t n = strlen(CONFIG_CHUNK);

    if (t != NULL && t->killed) {
        msg = "instruction budget exceeded (an endless loop?)";
    }

    if (strncmp(msg, CONFIG_CHUNK ":", n + 1) == 0) {
        return kg_err(errp, "%s:%s", name, msg + n + 1);
    }
    return kg_err(errp, "%s: %s", name, msg);
}

/* A field table: core's fields, then one of kind per plug-in section (malloc'd). */
static struct config_field *
config_fields_with(const struct config_field *core, const struct config_section *const *v, size_t n,
                   enum config_kind kind)
{
    size_t ncore = 0;
    struct config_field *out;

    while (core[ncore].key != NULL) {
        ncore++;
    }
    out = xcalloc(ncore + n + 1, sizeof(*out));
    memcpy(out, core, ncore * sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        out[ncore + i].key = v[i]->key;
        out[ncore + i].kind = kind;
        out[ncore + i].count = i;
    }
    return out;
}

int
config_load_buffer(const char *text, size_t len, const char *name, struct config *cfg, char **errp)
{
    struct config_ctx c = { text, len, name, NULL, cfg, NULL, NULL, NULL, NULL, NULL };
    struct config tmp;
    char *dir;
    struct sandbox *sb = NULL;
    lua_State *L;
    int rc = -1;

    memset(cfg, 0, sizeof(*cfg));
    dir = config_folder(name, errp);
    if (dir == NULL) {
        return -1;
    }
    config_defaults(&tmp, dir);
    c.dir = dir;
    c.cfg = &tmp;
    c.base = (char *)&tmp;
    c.tenant_fields = config_fields_with(config_tenant_fields, sections, nsections, CONFIG_SECTION);
    c.top_fields = config_fields_with(config_top_fields, globals, nglobals, CONFIG_BLOCK);
    sb = sandbox_new_data(CONFIG_MEMORY, CONFIG_INSTRUCTIONS, NULL);
    if (sb == NULL) {
        kg_err(errp, "%s: cannot create a Lua state", name);
        goto out;
    }
    L = sandbox_state(sb);
    lua_pushcfunction(L, l_config_run);
    if (luaL_loadbufferx(L, text, len, "=" CONFIG_CHUNK, "t") != LUA_OK) {
        config_lua_error(L, name, errp);
        goto out;
    }
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        config_lua_error(L, name, errp);
        goto out;
    }
    /* Reading the result is our own C code: no budget, and room for its copies. */
    sandbox_set_budget(sb, 0);
    sandbox_set_memory_cap(sb, CONFIG_MEMORY + CONFIG_HEADROOM);
    lua_pushcfunction(L, l_config_map);
    lua_pushlightuserdata(L, &c);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        config_lua_error(L, name, errp);
        goto out;
    }
    if (c.err != NULL) {
        kg_err(errp, "%s", c.err);
        goto out;
    }
    if (tmp.playbook_lib_dir == NULL) {
        tmp.playbook_lib_dir = xasprintf("%s/lib", tmp.playbook_dir);
    }
    tmp.path = xstrdup(name);
    *cfg = tmp;
    memset(&tmp, 0, sizeof(tmp));
    rc = 0;
out:
    sandbox_free(sb);
    config_free(&tmp);
    free(c.tenant_fields);
    free(c.top_fields);
    free(c.err);
    free(dir);
    return rc;
}

int
config_load(const char *path, struct config *cfg, char **errp)
{
    size_t len = 0;
    char *text;
    int rc;

    memset(cfg, 0, sizeof(*cfg));
    text = util_read_file(path, CONFIG_MAX_FILE, &len, errp);
    if (text == NULL) {
        return -1;
    }
    rc = config_load_buffer(text, len, path, cfg, errp);
    free(text);
    return rc;
}

/* The settings of tenant id: a binary search, the tenants being sorted by id. */
const struct config_tenant *
config_tenant(const struct config *cfg, const char *id)
{
    struct config_tenant key;

    if (cfg == NULL || id == NULL || cfg->ntenants == 0) {
        return NULL;
    }
    memset(&key, 0, sizeof(key));
    key.id = (char *)id;
    return bsearch(&key, cfg->tenants, cfg->ntenants, sizeof(*cfg->tenants), config_tenant_cmp);
}

static void config_fields_free(const struct config_field *fields, char *base);

static void
config_blocks_free(struct config_block *blocks, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        config_fields_free(blocks[k].section->fields, blocks[k].conf);
        free(blocks[k].conf);
    }
    free(blocks);
}

/* Free what the fields of a table hold in the struct at base (strings, host lists,
 * tenants with their plug-in blocks). Secrets as written are wiped first. */
static void
config_fields_free(const struct config_field *fields, char *base)
{
    for (const struct config_field *f = fields; f->key != NULL; f++) {
        char **sp = (char **)(base + f->offset);

        switch (f->kind) {
        case CONFIG_STRING:
            if (*sp != NULL) {
                explicit_bzero(*sp, strlen(*sp)); /* may be a plain secret */
            }
            /* fall through */
        case CONFIG_PATH:
        case CONFIG_LISTEN:
        case CONFIG_NAME:
        case CONFIG_SCOPE:
        case CONFIG_URL:
        case CONFIG_PROXY:
            free(*sp);
            *sp = NULL;
            break;
        case CONFIG_HOSTS:
        case CONFIG_NETS:
        case CONFIG_STRINGS: {
            char ***list = (char ***)(base + f->offset);
            size_t *n = (size_t *)(base + f->count);

            for (size_t i = 0; i < *n; i++) {
                free((*list)[i]);
            }
            free(*list);
            *list = NULL;
            *n = 0;
            break;
        }
        case CONFIG_TABLE:
            config_fields_free(f->fields, base);
            break;
        case CONFIG_LIST: {
            char **list = (char **)(base + f->offset);
            size_t *n = (size_t *)(base + f->count);

            for (size_t i = 0; i < *n; i++) {
                config_fields_free(f->fields, *list + i * (size_t)f->max);
            }
            free(*list);
            *list = NULL;
            *n = 0;
            break;
        }
        case CONFIG_TENANTS: {
            struct config_tenant **ts = (struct config_tenant **)(base + f->offset);
            size_t *n = (size_t *)(base + f->count);

            for (size_t i = 0; i < *n; i++) {
                struct config_tenant *t = &(*ts)[i];

                config_blocks_free(t->blocks, t->nblocks);
                free(t->id);
            }
            free(*ts);
            *ts = NULL;
            *n = 0;
            break;
        }
        default:
            break;
        }
    }
}

void
config_free(struct config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    free(cfg->path);
    config_fields_free(config_top_fields, (char *)cfg);
    config_blocks_free(cfg->blocks, cfg->nblocks);
    memset(cfg, 0, sizeof(*cfg));
}

static void
add_unique(const struct config_section ***v, size_t *n, const struct config_section *s)
{
    for (size_t i = 0; i < *n; i++) {
        if ((*v)[i] == s) {
            return;
        }
    }
    *v = xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = s;
}

void
config_add_global_section(const struct config_section *s)
{
    add_unique(&globals, &nglobals, s);
}

const void *
config_block(const struct config *cfg, const struct config_section *s)
{
    for (size_t i = 0; cfg != NULL && i < cfg->nblocks; i++) {
        if (cfg->blocks[i].section == s) {
            return cfg->blocks[i].conf;
        }
    }
    return NULL;
}

void
config_add_section(const struct config_section *s)
{
    add_unique(&sections, &nsections, s);
}

const void *
config_tenant_block(const struct config_tenant *t, const struct config_section *s)
{
    for (size_t i = 0; t != NULL && i < t->nblocks; i++) {
        if (t->blocks[i].section == s) {
            return t->blocks[i].conf;
        }
    }
    return NULL;
}

/* ---- the default file ---- */

/* Append s as a Lua string literal. */
static int
config_quote(struct buf *b, const char *s)
{
    if (buf_puts(b, "\"") == -1) {
        return -1;
    }
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        int rc;

        if (ch == '"' || ch == '\\') {
            rc = buf_printf(b, "\\%c", ch);
        } else if (ch == '\n') {
            rc = buf_puts(b, "\\n");
        } else if (ch < 0x20 || ch == 0x7f) {
            rc = buf_printf(b, "\\%03u", ch);
        } else {
            rc = buf_append(b, s, 1);
        }
        if (rc == -1) {
            return -1;
        }
    }
    return buf_puts(b, "\"");
}

/* The text of the default file, in pieces around the three values given. */
static const char config_text_head[] =
    "-- kagari.conf.lua: configuration of the kagari SOAR engine (written by `kagari init`).\n"
    "--\n"
    "-- This file is Lua, evaluated as data only: tables, strings, numbers, booleans and\n"
    "-- operators (.. + - * /) work; there are no functions or libraries (no os, no io).\n"
    "-- Every global is a setting: an unknown or misspelt name is an error that names its\n"
    "-- line, so a typo cannot pass silently. Use `local` for helper values, e.g.\n"
    "--     local base = \"/srv/kagari\"\n"
    "--     data_dir = base .. \"/data\"\n"
    "-- A setting left out takes the default shown here.\n"
    "--\n"
    "-- Sizes are a number of bytes or a string: \"512k\", \"4MiB\", \"1GiB\".\n"
    "-- Durations are a number of seconds or a string: \"500ms\", \"30s\", \"15m\", \"2h\", "
    "\"1d\".\n"
    "-- Relative paths are resolved against the folder of this file.\n"
    "\n"
    "-- Where the engine keeps its data: control.db (tenants, portal users, sessions,\n"
    "-- platform audit) and one SQLite file per tenant in tenants/. Deleting a tenant's\n"
    "-- file deletes its data, so keep this folder on storage in the agreed region, and\n"
    "-- back it up. Default: \"data\" next to this file.\n"
    "data_dir = ";

static const char config_text_playbooks[] =
    "\n"
    "\n"
    "-- Folder of the Lua playbooks: every *.lua file in it is loaded as a playbook.\n-- "
    "Default: "
    "\"playbooks\"\n"
    "-- next to this file. The libraries they load with require \"name\" are lib/name.lua in\n"
    "-- it (playbook_lib_dir = \"...\" names another folder).\n"
    "playbook_dir = ";

static const char config_text_intake[] =
    "\n"
    "\n"
    "-- Alert intake and the portal: the HTTP(S) listener.\n"
    "intake = {\n"
    "    -- Address and port to listen on, \"host:port\" (\"[::1]:8443\" for IPv6).\n"
    "    -- Default: \"127.0.0.1:8080\" (this machine only).\n"
    "    listen = ";

static const char config_text_tail[] =
    ",\n"
    "    -- Largest request body accepted (one alert or a batch); bigger ones are refused.\n"
    "    max_body = \"4MiB\",\n"
    "    -- Largest request line and headers accepted; bigger ones are refused.\n"
    "    max_header = \"16KiB\",\n"
    "    -- Most client connections open at once.\n"
    "    max_conns = 1024,\n"
    "    -- Most of them from one client address (raise it when a proxy or load balancer\n"
    "    -- connects for every sender); past it a new connection gets 503 and is closed.\n"
    "    max_conns_per_peer = 64,\n"
    "    -- Alerts per second one tenant may send, with bursts of up to tenant_burst\n"
    "    -- alerts; past it its requests get 429 with Retry-After. 0: no limit.\n"
    "    tenant_rate = 10000,\n"
    "    tenant_burst = 20000,\n"
    "    -- A client must send its headers within header_timeout and its body within\n"
    "    -- body_timeout; a keep-alive connection idle for idle_timeout is closed.\n"
    "    header_timeout = \"10s\",\n"
    "    body_timeout = \"30s\",\n"
    "    idle_timeout = \"60s\",\n"
    "    -- Load shedding: while this many playbook runs wait for the CPU, new alerts are\n"
    "    -- refused with 503 (senders retry) instead of queueing without bound.\n"
    "    max_queued_runs = 100000,\n"
    "    -- Threads that parse and normalize large request bodies (envelopes of Azure\n"
    "    -- records) off the event loop; by default one per CPU, at most 4. 0: on the loop.\n"
    "    -- parse_threads = 2,\n"
    "    -- Request bodies one tenant may have waiting for them; past it 503 (retry).\n"
    "    parse_queue = \"64MiB\",\n"
    "    -- TLS: the PEM certificate chain and its private key (keep the key mode 0600).\n"
    "    -- Set both to serve HTTPS; leave both out for plain HTTP, which is only fit for\n"
    "    -- loopback or behind a TLS-terminating proxy.\n"
    "    tls = {\n"
    "        -- cert = \"tls/cert.pem\",\n"
    "        -- key = \"tls/key.pem\",\n"
    "    },\n"
    "}\n"
    "\n"
    "-- Limits of playbook runs. Playbooks are untrusted code: each tenant has its own Lua\n"
    "-- state, and each run its own budget; a run over a limit fails, the engine does not.\n"
    "runs = {\n"
    "    -- Memory of one tenant's Lua state, shared by all its runs (waiting runs too).\n"
    "    memory = \"256MiB\",\n"
    "    -- Lua instructions one run may execute (waiting costs none).\n"
    "    instructions = 100000000,\n"
    "    -- Wall-clock limit of one run, waits for approvals and APIs included (24h).\n"
    "    timeout = \"1d\",\n"
    "    -- A busy run gives the CPU to the others after this long, then continues.\n"
    "    slice = \"5ms\",\n"
    "}\n"
    "\n"
    "-- Tenant databases (SQLite in WAL mode).\n"
    "store = {\n"
    "    -- A tenant's WAL file past this size (a reader holds an old snapshot) is logged\n"
    "    -- (store.wal_large) and truncated as soon as the readers let go. A busy WAL\n"
    "    -- begins over at its start each time it reaches half of it.\n"
    "    wal_warn = \"256MiB\",\n"
    "}\n"
    "\n"
    "-- Logs, on standard error.\n"
    "log = {\n"
    "    -- Least important level written: \"debug\", \"info\", \"warn\" or \"err\".\n"
    "    level = \"info\",\n"
    "    -- \"kv\" for key=value lines, \"json\" for one JSON object per line.\n"
    "    format = \"kv\",\n"
    "}\n";

/* After the tail: the connectors block, and an example of tenants left commented out
 * (every key with its purpose; the test uncomments it and loads it). */
static const char config_text_connectors[] =
    "\n"
    "-- Outgoing calls of the connectors (Microsoft Graph and Defender, webhooks).\n"
    "connectors = {\n"
    "    -- Key of the secrets written in this file as \"enc:v1:...\" (`kagari secret "
    "encrypt`\n"
    "    -- uses it too). Keep it mode 0600 and back it up apart from this file: without it,\n"
    "    -- those secrets cannot be read.\n"
    "    key_file = \"secret.key\",\n"
    "    -- PEM bundle of the certificate authorities trusted for outgoing HTTPS.\n"
    "    -- Default: the system's.\n"
    "    -- ca_file = \"/etc/ssl/certs/ca-certificates.crt\",\n"
    "    -- Proxy for every outgoing call, \"http://host:port\" (or https://).\n"
    "    -- Default: none, direct connections (proxy environment variables are ignored).\n"
    "    -- proxy = \"http://proxy.example.jp:3128\",\n"
    "    -- Time limit of one attempt of a call, the answer included.\n"
    "    timeout = \"30s\",\n"
    "    -- Attempts of one call, 1 to 20: a call answered 429, 503 or 504, or cut by a\n"
    "    -- network error, is tried again until this many attempts have been made.\n"
    "    max_attempts = 5,\n"
    "    -- Hold calls to each API's published rate limits per tenant (Defender 100/min and\n"
    "    -- 1,500/h, Identity Protection 1/s, ...). Turn off only against a test mock.\n"
    "    rate_limits = true,\n"
    "    -- Circuit breakers, per tenant and API endpoint: after this many failures in a row\n"
    "    -- (transport errors, 5xx) calls wait for the cooldown, then one trial call decides.\n"
    "    -- A waiting call goes on after the trial; it fails only at its run's deadline.\n"
    "    breaker_threshold = 5,\n"
    "    breaker_cooldown = \"30s\",\n"
    "    -- The longest wait a server's Retry-After (seconds or an HTTP-date) may ask of a\n"
    "    -- call; a longer one fails the call (\"throttled for N s\") at once.\n"
    "    retry_after_max = \"5m\",\n"
    "}\n"
    "\n"
    "-- Per-tenant settings, keyed by tenant id (lowercase letters, digits and '-'; write\n"
    "-- [\"acme-corp\"] = { ... } for an id with a '-'). A tenant not listed here has no\n"
    "-- connector blocks and dry_run = false. Remove the leading \"-- \" of the lines below\n"
    "-- to start from this example.\n"
    "-- tenants = {\n"
    "--     demo = {\n"
    "--         -- true: record what the playbooks would do without sending anything.\n"
    "--         dry_run = false,\n";

static const char config_text_end[] = "--     },\n"
                                      "-- }\n";

/* Each plug-in section's commented example, inside the example tenant. */
static int
config_examples(struct buf *b)
{
    for (size_t i = 0; i < nsections; i++) {
        if (sections[i]->example != NULL && buf_puts(b, sections[i]->example) == -1) {
            return -1;
        }
    }
    return 0;
}

int
config_write_default(const char *path, const char *data_dir, const char *playbook_dir,
                     const char *listen, char **errp)
{
    struct buf b;
    const char *p;
    size_t left;
    int fd, rc = -1;

    buf_init(&b, 0);
    if (buf_puts(&b, config_text_head) == -1 ||
        config_quote(&b, data_dir != NULL ? data_dir : "data") == -1 ||
        buf_puts(&b, config_text_playbooks) == -1 ||
        config_quote(&b, playbook_dir != NULL ? playbook_dir : "playbooks") == -1 ||
        buf_puts(&b, config_text_intake) == -1 ||
        config_quote(&b, listen != NULL ? listen : "127.0.0.1:8080") == -1 ||
        buf_puts(&b, config_text_tail) == -1 || buf_puts(&b, config_text_connectors) == -1 ||
        config_examples(&b) == -1 || buf_puts(&b, config_text_end) == -1) {
        buf_free(&b);
        return kg_err(errp, "%s: cannot build the default configuration", path);
    }
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd == -1) {
        if (errno == EEXIST) {
            kg_err(errp, "%s: already exists; not overwriting it", path);
        } else {
            kg_err(errp, "%s: %s", path, strerror(errno));
        }
        buf_free(&b);
        return -1;
    }
    p = b.data;
    left = b.len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);

        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            kg_err(errp, "%s: %s", path, strerror(errno));
            goto out;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fchmod(fd, 0600) == -1 || fsync(fd) == -1) {
        kg_err(errp, "%s: %s", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (close(fd) == -1 && rc == 0) {
        rc = kg_err(errp, "%s: %s", path, strerror(errno));
    }
    if (rc == -1) {
        unlink(path);
    }
    buf_free(&b);
    return rc;
}
