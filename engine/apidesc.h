/* apidesc.h: what a playbook can call, described once: read from a real playbook environment
 * (env.c's globals, every registered connector's module, the alert's methods, every
 * registered source's alert source names), plus a small table of what the functions
 * cannot say about themselves (parameters, results, "returns nil, err"). The lint checks
 * playbooks against it and the editor annotations are written from it, so neither can
 * drift from the engine: a function a connector adds is known the moment it registers. */
#ifndef KAGARI_APIDESC_H
#define KAGARI_APIDESC_H

#include <stddef.h>

#include "engine/util.h"

enum apidesc_kind { APIDESC_FUNCTION, APIDESC_TABLE, APIDESC_VALUE };

struct apidesc_entry {
    char *path; /* "sleep", "defender", "defender.isolate", "json.null" */
    enum apidesc_kind kind;
    int standard;  /* part of standard Lua (string, table, pairs...), not kagari's own */
    int connector; /* a registered connector's module or one of its members */
    /* From the metadata table (NULL / -1 when it has no row): */
    const char *params;     /* LuaLS parameter list: "id: string, opts?: table" */
    const char *returns;    /* LuaLS result types: "table?, string?" */
    const char *summary;    /* one line */
    int min_args, max_args; /* -1: not known (max -1 also for a variable count) */
    int nil_err;            /* returns nil, message on an operational failure */
    char *value_type;       /* APIDESC_VALUE: "number", "string", "boolean", "userdata" */
};

struct apidesc {
    struct apidesc_entry *v; /* sorted by path */
    size_t n;
    char **methods; /* the alert's methods (alert:observable ...) */
    size_t nmethods;
    char **fields; /* the alert's fields (alert.source ...), sorted */
    size_t nfields;
    char **sources; /* the alert source names of every registered source, sorted */
    size_t nsources;
};

/* Build the description from a fresh playbook environment. -1 and *errp when the
 * environment cannot be made. Free with apidesc_free. */
int apidesc_load(struct apidesc *api, char **errp) KG_WUR;
void apidesc_free(struct apidesc *api);

const struct apidesc_entry *apidesc_find(const struct apidesc *api, const char *path);
/* Same, for "prefix.name" without building the string. */
const struct apidesc_entry *apidesc_member(const struct apidesc *api, const char *prefix,
                                           const char *name);
int apidesc_has_method(const struct apidesc *api, const char *name);
int apidesc_has_field(const struct apidesc *api, const char *name);
/* Is name a known alert source, or pattern ("azure.*") a prefix of one? */
int apidesc_source_known(const struct apidesc *api, const char *name);
/* The known name closest to name (edit distance at most 2), or NULL: among the members of
 * prefix (NULL: the globals), or among the sources when sources is set (APIDESC_SUGGEST_SOURCES),
 * or the alert's fields and methods (APIDESC_SUGGEST_ALERT). */
#define APIDESC_SUGGEST_SOURCES 1
#define APIDESC_SUGGEST_ALERT 2
const char *apidesc_suggest(const struct apidesc *api, const char *prefix, const char *name,
                            int what);

/* The argument counts of alert method name (self not counted) and its parameter list:
 * 1, or 0 when the metadata table has no row for it. */
int apidesc_method_args(const struct apidesc *api, const char *name, int *min, int *max,
                        const char **params);

/* Does every row of the metadata table name a registered function? -1 and *errp naming
 * the first stale row. */
int apidesc_check_meta(const struct apidesc *api, char **errp) KG_WUR;

/* Write LuaLS annotation files (---@meta) for kagari's own globals into dir, which must
 * exist: kagari.lua with every built-in and connector module, and .luarc.json. */
int apidesc_write_annotations(const struct apidesc *api, const char *dir, char **errp) KG_WUR;

#endif
