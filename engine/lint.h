/* lint.h: the deep lint of playbooks and libraries: their compiled code (engine/bytecode)
 * checked against the real playbook API (engine/api): undeclared globals, unknown module
 * members and alert methods, wrong argument counts, unchecked results of calls that
 * return nil, err, comparisons of alert.source with unknown source names, and in
 * libraries, state that functions would change after loading. */
#ifndef KAGARI_LINT_H
#define KAGARI_LINT_H

#include <lua.h>
#include <stddef.h>

#include "engine/apidesc.h"
#include "engine/util.h"

struct lint_finding {
    int line, col;
    char *msg;
    int note; /* advice only: not counted as a problem */
};

struct lint_report {
    struct lint_finding *v;
    size_t n;
};

#define LINT_LIBRARY 1 /* the chunk is a library (lib/NAME.lua), not a playbook */

/* Lint one chunk (src, shown as `shown` in messages; compiled on L, nothing runs). The
 * findings are appended to out, in line order; a line holding the comment "lint: ignore"
 * has none. -1 and *errp when the chunk does not compile ("name:line: message"). */
int lint_chunk(const struct apidesc *api, lua_State *L, const char *shown, const char *src,
               size_t len, int flags, struct lint_report *out, char **errp) KG_WUR;
/* A finding about a trigger source name (on.source) that no registered source gives, at
 * the name's first place in src: a problem when it looks like a misspelling of a known
 * name (close to one, or in a known family such as "entra."), else a note (a sender's own
 * source name). */
void lint_trigger(const struct apidesc *api, const char *src, size_t len, const char *name,
                  struct lint_report *out);
void lint_report_free(struct lint_report *r);

#endif
