/* config.c: kagari.conf.lua, evaluated in a throwaway data-only Lua state and mapped
 * onto struct config, with every unknown key and wrong type reported as file:line. */
#include "engine/config.h"

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

#define CONFIG_MAX_FILE (1u << 20)      /* bytes of kagari.conf.lua */
#define CONFIG_MEMORY (8u << 20)        /* the evaluating state's memory cap */
#define CONFIG_HEADROOM (1u << 20)      /* more memory for reading the result */
#define CONFIG_INSTRUCTIONS 10000000ULL /* an endless loop is stopped after these */
#define CONFIG_HOOK_COUNT 1000
#define CONFIG_BYTES_PER_INSTRUCTION 64 /* allocation is work: a big .. is one instruction */

#define CONFIG_CHUNK "config" /* chunk name; its "config:" prefix is replaced by the path */

/* The evaluating state: allocator bookkeeping and the instruction count. */
struct config_eval {
    size_t used;
    size_t cap;
    uint64_t instructions;
};

/* What the mapping step works with. */
struct config_ctx {
    const char *text; /* the file's text, to find the line of a nested key */
    size_t len;
    const char *name; /* the file, for messages */
    const char *dir;  /* its folder, absolute */
    struct config *cfg;
    char *err; /* the first problem found */
};

enum config_kind {
    CONFIG_PATH,     /* char *, relative to the file's folder */
    CONFIG_LISTEN,   /* char *, host:port */
    CONFIG_SIZE,     /* size_t: bytes or "4MiB" */
    CONFIG_DURATION, /* double seconds: seconds or "15m" */
    CONFIG_SLICE,    /* double milliseconds, written as a duration */
    CONFIG_INT,      /* int */
    CONFIG_COUNT,    /* uint64_t */
    CONFIG_LEVEL,    /* int: enum log_level by name */
    CONFIG_FORMAT,   /* int: 0 "kv", 1 "json" */
    CONFIG_TABLE,    /* nested fields */
};

struct config_field {
    const char *key;
    enum config_kind kind;
    size_t offset;                     /* in struct config */
    double min;                        /* smallest value allowed (sizes, durations, numbers) */
    double max;                        /* largest, 0 = no limit */
    const struct config_field *fields; /* CONFIG_TABLE */
};

static const struct config_field config_tls_fields[] = {
    { "cert", CONFIG_PATH, offsetof(struct config, intake.tls_cert), 0, 0, NULL },
    { "key", CONFIG_PATH, offsetof(struct config, intake.tls_key), 0, 0, NULL },
    { NULL, 0, 0, 0, 0, NULL },
};

static const struct config_field config_intake_fields[] = {
    { "listen", CONFIG_LISTEN, offsetof(struct config, intake.listen), 0, 0, NULL },
    { "max_body", CONFIG_SIZE, offsetof(struct config, intake.max_body), 1024, 0, NULL },
    { "max_header", CONFIG_SIZE, offsetof(struct config, intake.max_header), 1024, 0, NULL },
    { "max_conns", CONFIG_INT, offsetof(struct config, intake.max_conns), 1, 1000000, NULL },
    { "header_timeout", CONFIG_DURATION, offsetof(struct config, intake.header_timeout), 0.001, 0,
      NULL },
    { "body_timeout", CONFIG_DURATION, offsetof(struct config, intake.body_timeout), 0.001, 0,
      NULL },
    { "idle_timeout", CONFIG_DURATION, offsetof(struct config, intake.idle_timeout), 0.001, 0,
      NULL },
    { "max_queued_runs", CONFIG_INT, offsetof(struct config, intake.max_queued_runs), 1, INT_MAX,
      NULL },
    { "tls", CONFIG_TABLE, 0, 0, 0, config_tls_fields },
    { NULL, 0, 0, 0, 0, NULL },
};

static const struct config_field config_runs_fields[] = {
    { "memory", CONFIG_SIZE, offsetof(struct config, runs.memory), 1 << 20, 0, NULL },
    { "instructions", CONFIG_COUNT, offsetof(struct config, runs.instructions), 1000, 1e18, NULL },
    { "timeout", CONFIG_DURATION, offsetof(struct config, runs.timeout), 0.001, 0, NULL },
    { "slice", CONFIG_SLICE, offsetof(struct config, runs.slice_ms), 0, 0, NULL },
    { NULL, 0, 0, 0, 0, NULL },
};

static const struct config_field config_log_fields[] = {
    { "level", CONFIG_LEVEL, offsetof(struct config, log.level), 0, 0, NULL },
    { "format", CONFIG_FORMAT, offsetof(struct config, log.json), 0, 0, NULL },
    { NULL, 0, 0, 0, 0, NULL },
};

static const struct config_field config_top_fields[] = {
    { "data_dir", CONFIG_PATH, offsetof(struct config, data_dir), 0, 0, NULL },
    { "playbook_dir", CONFIG_PATH, offsetof(struct config, playbook_dir), 0, 0, NULL },
    { "intake", CONFIG_TABLE, 0, 0, 0, config_intake_fields },
    { "runs", CONFIG_TABLE, 0, 0, 0, config_runs_fields },
    { "log", CONFIG_TABLE, 0, 0, 0, config_log_fields },
    { NULL, 0, 0, 0, 0, NULL },
};

static const char config_key_env = 'E';   /* registry: the globals the file set */
static const char config_key_lines = 'N'; /* registry: global name -> line of assignment */

/* ---- the evaluating state ---- */

/* A capped lua_Alloc, as the sandbox's: growth past the cap fails, frees never do.
 * Bytes allocated count as instructions, and past the budget growth fails too: one
 * concatenation instruction can copy megabytes, so counting instructions alone would
 * let a loop of them run for hours. */
static void *
config_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct config_eval *ev = ud;
    size_t old = ptr != NULL ? osize : 0;
    void *np;

    if (nsize == 0) {
        free(ptr);
        ev->used -= old;
        return NULL;
    }
    if (nsize > old && (nsize - old > ev->cap || ev->used > ev->cap - (nsize - old) ||
                        ev->instructions > CONFIG_INSTRUCTIONS)) {
        return NULL;
    }
    np = realloc(ptr, nsize);
    if (np == NULL) {
        if (nsize <= old) {
            ev->used = ev->used - old + nsize;
            return ptr;
        }
        return NULL;
    }
    if (nsize > old) {
        ev->instructions += (nsize - old) / CONFIG_BYTES_PER_INSTRUCTION;
    }
    ev->used = ev->used - old + nsize;
    return np;
}

/* Stop a configuration that runs too long (an endless loop). */
static void
config_hook(lua_State *L, lua_Debug *ar)
{
    struct config_eval *ev = *(struct config_eval **)lua_getextraspace(L);

    (void)ar;
    ev->instructions += CONFIG_HOOK_COUNT;
    if (ev->instructions > CONFIG_INSTRUCTIONS) {
        luaL_error(L, "instruction budget exceeded (an endless loop?)");
    }
}

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

/* The line, from `from` to `to`, where "key =" appears outside a comment (the first such
 * line, or with last the last one), or 0. */
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

            if (memcmp(q, key, klen) != 0 || (q > p && config_ident_char(q[-1])) ||
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
 * nested key, the line inside it that sets the key (a heuristic on the text; when it
 * finds nothing, Lua's line stands). */
static int
config_refine_line(const struct config_ctx *c, const char *path, int line)
{
    size_t n = strcspn(path, ".[");
    char *top = xstrndup(path, n);
    const char *leaf = strrchr(path, '.');
    int start = config_find_line(c, top, 1, line, 1);

    free(top);
    if (start == 0) {
        return line;
    }
    if (leaf != NULL && strchr(leaf, '[') == NULL) {
        int at = config_find_line(c, leaf + 1, start, line, 0);

        return at != 0 ? at : start;
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
    return 0;
}

static int config_map_table(lua_State *L, struct config_ctx *c, int idx, const char *prefix,
                            const struct config_field *fields, int line);

/* Check and store the value at the top of L for field f. */
static int
config_map_value(lua_State *L, struct config_ctx *c, int line, const char *path,
                 const struct config_field *f)
{
    char *base = (char *)c->cfg;
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
    if (config_map_table(L, c, -1, "", config_top_fields, -1) == -1) {
        return 0;
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
    cfg->intake.header_timeout = 10;
    cfg->intake.body_timeout = 30;
    cfg->intake.idle_timeout = 60;
    cfg->intake.max_queued_runs = 100000;
    cfg->runs.memory = (size_t)256 << 20;
    cfg->runs.instructions = 100000000;
    cfg->runs.timeout = 86400;
    cfg->runs.slice_ms = 5;
    cfg->log.level = LOG_INFO;
    cfg->log.json = 0;
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
 * else (a memory error) gets "name: " in front. */
static int
config_lua_error(lua_State *L, const struct config_eval *ev, const char *name, char **errp)
{
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error";
    size_t n = strlen(CONFIG_CHUNK);

    if (ev->instructions > CONFIG_INSTRUCTIONS) {
        msg = "instruction budget exceeded (an endless loop?)";
    }

    if (strncmp(msg, CONFIG_CHUNK ":", n + 1) == 0) {
        return kg_err(errp, "%s:%s", name, msg + n + 1);
    }
    return kg_err(errp, "%s: %s", name, msg);
}

int
config_load_buffer(const char *text, size_t len, const char *name, struct config *cfg, char **errp)
{
    struct config_eval ev = { 0, CONFIG_MEMORY, 0 };
    struct config_ctx c = { text, len, name, NULL, cfg, NULL };
    struct config tmp;
    char *dir;
    lua_State *L = NULL;
    int rc = -1;

    memset(cfg, 0, sizeof(*cfg));
    dir = config_folder(name, errp);
    if (dir == NULL) {
        return -1;
    }
    config_defaults(&tmp, dir);
    c.dir = dir;
    c.cfg = &tmp;
    L = lua_newstate(config_alloc, &ev);
    if (L == NULL) {
        kg_err(errp, "%s: cannot create a Lua state", name);
        goto out;
    }
    *(struct config_eval **)lua_getextraspace(L) = &ev;
    lua_sethook(L, config_hook, LUA_MASKCOUNT, CONFIG_HOOK_COUNT);
    lua_pushcfunction(L, l_config_run);
    if (luaL_loadbufferx(L, text, len, "=" CONFIG_CHUNK, "t") != LUA_OK) {
        config_lua_error(L, &ev, name, errp);
        goto out;
    }
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        config_lua_error(L, &ev, name, errp);
        goto out;
    }
    lua_sethook(L, NULL, 0, 0);
    ev.cap += CONFIG_HEADROOM;
    ev.instructions = 0;
    lua_pushcfunction(L, l_config_map);
    lua_pushlightuserdata(L, &c);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        config_lua_error(L, &ev, name, errp);
        goto out;
    }
    if (c.err != NULL) {
        kg_err(errp, "%s", c.err);
        goto out;
    }
    tmp.path = xstrdup(name);
    *cfg = tmp;
    memset(&tmp, 0, sizeof(tmp));
    rc = 0;
out:
    if (L != NULL) {
        lua_close(L);
    }
    config_free(&tmp);
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

void
config_free(struct config *cfg)
{
    if (cfg == NULL) {
        return;
    }
    free(cfg->path);
    free(cfg->data_dir);
    free(cfg->playbook_dir);
    free(cfg->intake.listen);
    free(cfg->intake.tls_cert);
    free(cfg->intake.tls_key);
    memset(cfg, 0, sizeof(*cfg));
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
    "-- Folder of the Lua playbooks and their helper libraries. Default: \"playbooks\"\n"
    "-- next to this file.\n"
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
    "    -- A client must send its headers within header_timeout and its body within\n"
    "    -- body_timeout; a keep-alive connection idle for idle_timeout is closed.\n"
    "    header_timeout = \"10s\",\n"
    "    body_timeout = \"30s\",\n"
    "    idle_timeout = \"60s\",\n"
    "    -- Load shedding: while this many playbook runs wait for the CPU, new alerts are\n"
    "    -- refused with 503 (senders retry) instead of queueing without bound.\n"
    "    max_queued_runs = 100000,\n"
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
    "-- Logs, on standard error.\n"
    "log = {\n"
    "    -- Least important level written: \"debug\", \"info\", \"warn\" or \"err\".\n"
    "    level = \"info\",\n"
    "    -- \"kv\" for key=value lines, \"json\" for one JSON object per line.\n"
    "    format = \"kv\",\n"
    "}\n";

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
        buf_puts(&b, config_text_tail) == -1) {
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
