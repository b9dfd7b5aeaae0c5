/* api.h: what a playbook can call, described once: read from a real playbook environment
 * (env.c's globals, every registered connector's module, the alert's methods, every
 * registered source's alert source names), plus a small table of what the functions
 * cannot say about themselves (parameters, results, "returns nil, err"). The lint checks
 * playbooks against it and the editor annotations are written from it, so neither can
 * drift from the engine: a function a connector adds is known the moment it registers. */
#ifndef KAGARI_API_H
#define KAGARI_API_H

#include <stddef.h>

#include "engine/util.h"

enum api_kind { API_FUNCTION, API_TABLE, API_VALUE };

struct api_entry {
    char *path; /* "sleep", "defender", "defender.isolate", "json.null" */
    enum api_kind kind;
    int standard;  /* part of standard Lua (string, table, pairs...), not kagari's own */
    int connector; /* a registered connector's module or one of its members */
    /* From the metadata table (NULL / -1 when it has no row): */
    const char *params;     /* LuaLS parameter list: "id: string, opts?: table" */
    const char *returns;    /* LuaLS result types: "table?, string?" */
    const char *summary;    /* one line */
    int min_args, max_args; /* -1: not known (max -1 also for a variable count) */
    int nil_err;            /* returns nil, message on an operational failure */
    char *value_type;       /* API_VALUE: "number", "string", "boolean", "userdata" */
};

struct api {
    struct api_entry *v; /* sorted by path */
    size_t n;
    char **methods; /* the alert's methods (alert:observable ...) */
    size_t nmethods;
    char **fields; /* the alert's fields (alert.source ...), sorted */
    size_t nfields;
    char **sources; /* the alert source names of every registered source, sorted */
    size_t nsources;
};

/* Build the description from a fresh playbook environment. -1 and *errp when the
 * environment cannot be made. Free with api_free. */
int api_load(struct api *api, char **errp) KG_WUR;
void api_free(struct api *api);

const struct api_entry *api_find(const struct api *api, const char *path);
/* Same, for "prefix.name" without building the string. */
const struct api_entry *api_member(const struct api *api, const char *prefix, const char *name);
int api_has_method(const struct api *api, const char *name);
int api_has_field(const struct api *api, const char *name);
/* Is name a known alert source, or pattern ("azure.*") a prefix of one? */
int api_source_known(const struct api *api, const char *name);
/* The known name closest to name (edit distance at most 2), or NULL: among the members of
 * prefix (NULL: the globals), or among the sources when sources is set (API_SUGGEST_SOURCES),
 * or the alert's fields and methods (API_SUGGEST_ALERT). */
#define API_SUGGEST_SOURCES 1
#define API_SUGGEST_ALERT 2
const char *api_suggest(const struct api *api, const char *prefix, const char *name, int what);

/* The argument counts of alert method name (self not counted) and its parameter list:
 * 1, or 0 when the metadata table has no row for it. */
int api_method_args(const struct api *api, const char *name, int *min, int *max,
                    const char **params);

/* Does every row of the metadata table name a registered function? -1 and *errp naming
 * the first stale row. */
int api_check_meta(const struct api *api, char **errp) KG_WUR;

/* Write LuaLS annotation files (---@meta) for kagari's own globals into dir, which must
 * exist: kagari.lua with every built-in and connector module, and .luarc.json. */
int api_write_annotations(const struct api *api, const char *dir, char **errp) KG_WUR;

#endif
