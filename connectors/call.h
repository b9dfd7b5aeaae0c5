/* call.h: a connector call as a journaled effect (DESIGN.md "Durable runs"). It runs
 * the playbook's request through the tenant's dry-run switch, the journal, the shared
 * rate limiter, the endpoint's circuit breaker, an OAuth token, retries with backoff
 * (Retry-After honoured) bounded by attempts and the run's deadline, and maps the answer
 * to the value the playbook gets: the decoded result, or nil + message. */
#ifndef KAGARI_CALL_H
#define KAGARI_CALL_H

#include <lua.h>

#include "connectors/httpc.h"
#include "connectors/limiter.h"

struct call;

/* What a finished HTTP exchange means. Return 1 (success: *result is JSON text, malloc'd)
 * or 0 (failure: *result is a message, malloc'd plain text), or 2 to ask for the next
 * request (paging: *result is the next absolute URL). The default (map == NULL): 2xx is
 * success with the body as result ("true" when empty); anything else is a failure
 * "<kind>: HTTP <status> <error code>: <message>". */
typedef int (*call_map_fn)(struct call *c, const struct httpc_response *resp, char **result);

enum call_api {
    CALL_GRAPH = 0, /* base: tenants.<id>.microsoft.graph, Graph token */
    CALL_DEFENDER,  /* base: tenants.<id>.microsoft.defender, Defender token */
    CALL_PLAIN,     /* path is an absolute URL; no token (the generic http module) */
};

struct call_spec {
    const char *kind;       /* journal kind, e.g. "graph.disable_user" */
    enum call_api api;      /* which base URL, token scope and limiter */
    const char *limiter;    /* limiter key prefix, e.g. "graph.users", "defender" */
    enum limiter_prio prio; /* containment before enrichment */
    int idempotent;         /* may be resent when a crash left it in doubt */
    const char *method;
    const char *path;       /* appended to the API base ("/v1.0/users/alice%40x.jp") */
    const char *body;       /* JSON or NULL */
    call_map_fn map;        /* NULL: default mapping */
    /* In doubt and not idempotent: GET this path first; reconcile returns 1 with a
     * result when the effect is found done (recorded as reconciled, nothing resent), 0
     * to resend, -1 (with a message in *result, or NULL) when the state cannot be read:
     * the call then fails rather than guess. NULL: not reconcilable (the run fails
     * rather than risk a repeat). */
    const char *reconcile_path;
    call_map_fn reconcile;
    void *ud;               /* for map functions: call_ud() */
    /* Calls with the same exclusive key never overlap: a second one waits until the
     * first has finished (e.g. "isolate:<machine>": never two isolate requests for one
     * machine in flight). NULL: none. */
    const char *exclusive;
    const char *const *headers; /* extra "Name: value" lines (CALL_PLAIN), or NULL */
    double timeout;             /* seconds per attempt; 0 = connectors.timeout */
};

/* The Lua C function's tail: `return call_effect(L, &spec);`. Copies what it needs from
 * spec. Returns the number of results (replayed, dry-run, immediate failure) or yields
 * until the call completes. */
int call_effect(lua_State *L, const struct call_spec *spec);

/* Ready-made mappings: paged lists ({"value":[...],"@odata.nextLink":...}) collected into
 * one array, following next links only on the API's own origin (the token goes with
 * them), at most 50 pages; and "2xx means true". */
int call_map_paged(struct call *c, const struct httpc_response *resp, char **result);
int call_map_true(struct call *c, const struct httpc_response *resp, char **result);

void *call_ud(const struct call *c);
/* When the journal entry of this call was first started (ms since the epoch): a
 * reconciliation looks for what happened since. */
int64_t call_started_ms(const struct call *c);
const char *call_kind(const struct call *c);
/* For map functions: the message of an error body (Graph/MDE envelope) or the status. */
char *call_error_text(const struct call *c, const struct httpc_response *resp);

/* Percent-encode a path segment (RFC 3986 unreserved kept). Malloc'd. */
char *call_escape(const char *s);

/* Helpers for the modules' argument checks and paths. Everything they push is owned by
 * the Lua stack, so nothing leaks when a later step raises.
 * call_check_id: the string argument at idx as an id (1 to 256 bytes, no NUL); raises
 * "expected <what>". call_push_path: pushes prefix + percent-encoded id + suffix.
 * call_push_id_path: both. call_odata_quote: appends s with single quotes doubled (an
 * OData string literal's body). call_push_filter_path: pushes
 * "<prefix>?$filter=<encoded filter>" and frees the filter buffer. */
const char *call_check_id(lua_State *L, int idx, const char *what);
const char *call_push_path(lua_State *L, const char *prefix, const char *id, const char *suffix);
const char *call_push_id_path(lua_State *L, int idx, const char *what, const char *prefix,
                              const char *suffix);
void call_odata_quote(struct buf *b, const char *s);
const char *call_push_filter_path(lua_State *L, const char *prefix, struct buf *filter);
/* Push "<prefix>?$filter=<encoded filter>&$top=<top>" ($filter left out when the filter
 * is empty) and free the filter buffer. */
const char *call_push_list_path(lua_State *L, const char *prefix, struct buf *filter,
                                long long top);
/* The argument table at idx of a paged lookup by user and time, { user = upn, since =
 * epoch seconds or RFC 3339, top = n }: checked (raises on misuse; top 1..max_top,
 * default 100), then pushed as "<prefix>?$filter=userPrincipalName eq '..' and
 * <time_field> ge <since>&$top=n". */
const char *call_push_user_since_path(lua_State *L, int idx, const char *prefix,
                                      const char *time_field, lua_Integer max_top);

/* Settings that apply to every call (from the configuration). */
struct call_settings {
    const char *ca_file;
    const char *proxy;
    double timeout;   /* per attempt, seconds */
    int max_attempts; /* per call */
    int rate_limits;  /* 0: no limiter buckets (for benchmarks against a mock) */
};
void call_configure(const struct call_settings *s);

/* Counters for /metrics. */
struct call_stats {
    unsigned long long started, succeeded, failed, retried, replayed, dry_run, reconciled;
    unsigned long long in_flight, waiting_limiter;
};
const struct call_stats *call_stats(void);

#endif
