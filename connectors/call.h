/* call.h: a connector's HTTP call as a journaled effect (docs/ARCHITECTURE.md "Durable runs"),
 * knowing no vendor. The connector describes its API once (struct call_api: base URL,
 * credentials, rate limits, error envelope) and each call (struct call_spec); the call
 * core runs it through the effect driver (journal, replay, dry run, in doubt), the
 * tenant's rate limiter, the endpoint's circuit breaker, the credentials, retries with
 * backoff (Retry-After honoured) bounded by attempts and the run's deadline, and maps
 * the answer to what the playbook gets: the decoded result, or nil + message. */
#ifndef KAGARI_CALL_H
#define KAGARI_CALL_H

#include "connectors/httpc.h"
#include "connectors/limiter.h"
#include "connectors/oauth.h"
#include "engine/kagari.h"

struct call;

/* What a finished HTTP exchange means. Return 1 (success: *result is JSON text, malloc'd)
 * or 0 (failure: *result is a message, malloc'd plain text), or 2 to ask for the next
 * request (paging: *result is the next absolute URL, checked with call_next_page). The
 * default (map == NULL): 2xx is success with the body as result (JSON, or a JSON string
 * when it is not JSON; "true" when empty); anything else a failure
 * "<kind>: HTTP <status> <the API's error text>". */
typedef int (*call_map_fn)(struct call *c, const struct httpc_response *resp, char **result);

/* How a call proves who it is. */
enum call_auth {
    CALL_AUTH_NONE = 0,
    CALL_AUTH_OAUTH2, /* client credentials (secret or certificate): a bearer token */
    CALL_AUTH_HEADER, /* a fixed header line, e.g. "X-PAN-KEY: <key>" */
    CALL_AUTH_BASIC,  /* HTTP basic: user and password */
};

/* The credentials of one tenant for one API; every pointer is borrowed from the
 * connector's tenant state. */
struct call_cred {
    enum call_auth kind;
    struct oauth_app app; /* OAUTH2; ca_file and proxy are filled by the call core */
    const char *scope;    /* OAUTH2 */
    const char *header;   /* HEADER: the whole "Name: value" line */
    const char *user;     /* BASIC */
    const char *password; /* BASIC */
};

/* A rate-limit bucket a tenant gets for an API: limiter key "<key>:<tenant>". One key
 * may have several rows (per minute and per hour). */
struct call_limit {
    const char *key;
    double per_second;
    double burst;
};

/* One API of a connector (Graph, Defender, the PAN-OS XML API, plain HTTP). */
struct call_api {
    const char *name;
    /* The URL a call's path is appended to for tenant t ("" for absolute URLs), or NULL
     * when the tenant has no settings for it: the call fails with not_configured. */
    const char *(*base)(const struct tenant *t);
    const char *not_configured;
    /* The tenant's credentials: 0, or -1 with *errp (the call fails). NULL: none. */
    int (*credentials)(const struct tenant *t, struct call_cred *cred, char **errp);
    const char *accept;              /* Accept header value; NULL: application/json */
    const struct call_limit *limits; /* ends with a NULL key; NULL: no buckets */
    /* The code and message of an error answer's envelope ("Code: message"), malloc'd,
     * or NULL when the body has none (the status is reported alone). */
    char *(*error_text)(const struct httpc_response *resp);
};

/* How a request body is encoded: its Content-Type, and how the journal records it (JSON
 * inline; anything else as a JSON string with its format named). */
enum call_body {
    CALL_BODY_JSON = 0, /* application/json; the text must be JSON */
    CALL_BODY_FORM,     /* application/x-www-form-urlencoded */
    CALL_BODY_XML,      /* application/xml */
    CALL_BODY_TEXT,     /* text/plain */
};

struct call_spec {
    const char *kind; /* journal kind, e.g. "graph.disable_user" */
    const struct call_api *api;
    const char *limiter;    /* limiter key prefix, e.g. "graph.users", "defender" */
    enum limiter_prio prio; /* containment before enrichment */
    int idempotent;         /* may be resent when a crash left it in doubt */
    const char *method;
    const char *path; /* appended to the API base ("/v1.0/users/alice%40x.jp") */
    const char *body; /* or NULL */
    enum call_body body_format;
    call_map_fn map; /* NULL: default mapping */
    /* In doubt and not idempotent: GET this path first; reconcile returns 1 with a
     * result when the effect is found done (recorded as reconciled, nothing resent), 0
     * to resend, -1 (with a message in *result, or NULL) when the state cannot be read:
     * the call then fails rather than guess. NULL: not reconcilable (the run fails
     * rather than risk a repeat). */
    const char *reconcile_path;
    call_map_fn reconcile;
    void *ud; /* for map functions: call_ud() */
    /* Calls with the same exclusive key never overlap: a second one waits until the
     * first has finished (e.g. "isolate:<machine>": never two isolate requests for one
     * machine in flight). NULL: none. */
    const char *exclusive;
    const char *const *headers; /* extra "Name: value" lines (they replace Accept), or NULL */
    double timeout;             /* seconds per attempt; 0 = connectors.timeout */
    /* A key the server deduplicates requests by (the caller checked it: 1 to 255
     * printable ASCII characters), or NULL. Sent as "Idempotency-Key: <key>" with every
     * attempt and recorded in the journaled request (so a replay must carry the same
     * key); it makes the call safe to resend, as if idempotent: a lost answer is
     * retried and a crash in flight resends it, with the same key. */
    const char *idempotency_key;
    /* What the journal records as the request's URL instead of the URL itself, for a URL
     * that is a credential (a Slack or Teams webhook URL carries its own signature), or
     * NULL: the URL. A replay compares this, so it must be as stable as the URL. */
    const char *journal_url;
    /* 1: the call tells people (a notification), it does not act on the customer's
     * systems: an approval's effects= list does not restrict it (EFFECT_NOTICE). */
    int notice;
};

/* The Lua C function's tail: `return call_effect(L, &spec);`. Copies what it needs from
 * spec. Returns the number of results (replayed, dry-run, immediate failure) or yields
 * until the call completes. */
int call_effect(lua_State *L, const struct call_spec *spec);

/* A call that is no run's effect: the connector's own request on behalf of several
 * effects (one message carrying the requests of many runs, each journaled by its own
 * run), or a step of a longer effect (polling a job). It goes through the same rate
 * limiter, breaker, credentials, retries and map function as an effect's call, with no
 * deadline but the attempts. done(arg, ok, result) is called once, after the call is
 * freed (result: JSON text when ok, else a message; borrowed for the call). Returns the
 * call, or NULL with *errp when the API is not configured for t (done is not called).
 * call_request_cancel frees a call still in flight without calling done. */
typedef void (*call_done_fn)(void *arg, int ok, const char *result);
struct call *call_request(const struct tenant *t, const struct call_spec *spec, call_done_fn done,
                          void *arg, char **errp);
void call_request_cancel(struct call *c);

/* A connector's calls that differ only in these: a static table row each, and
 * call_def_effect fills the rest of the spec (path and body from the arguments). */
struct call_def {
    const char *kind;
    const struct call_api *api;
    const char *limiter;
    enum limiter_prio prio;
    int idempotent;
    const char *method;
    call_map_fn map;
};
int call_def_effect(lua_State *L, const struct call_def *d, const char *path, const char *body);
/* For a call that needs more of the spec (reconcile, exclusive, ud, headers, ...): spec
 * becomes d's fields with everything else zero; the caller fills in the rest. */
void call_spec_from_def(struct call_spec *spec, const struct call_def *d);

/* "2xx means true". */
int call_map_true(struct call *c, const struct httpc_response *resp, char **result);

/* For paging map functions: the list gathered so far (created empty on first use; the
 * call owns it), and the check of a next-page link: it must stay on the API's own origin
 * (the credentials go with it) and within 50 pages. Returns 2 with *result the link to
 * follow, 1 when there is no next page (*result untouched), or 0 with *result a
 * message. */
struct cJSON *call_acc(struct call *c);
int call_next_page(struct call *c, const char *next, char **result);

void *call_ud(const struct call *c);
/* When the journal entry of this call was first started (ms since the epoch): a
 * reconciliation looks for what happened since. */
int64_t call_started_ms(const struct call *c);
const char *call_kind(const struct call *c);
/* The URL of the request being answered (a page's, for paging map functions). */
const char *call_url(const struct call *c);
struct run *call_run(const struct call *c);
/* For map functions: "<kind>: HTTP <status> <error text>" or the transport error. */
char *call_error_text(const struct call *c, const struct httpc_response *resp);

/* Percent-encode a path segment (RFC 3986 unreserved kept). Malloc'd. */
char *call_escape(const char *s);

/* Helpers for the modules' argument checks and paths. Everything they push is owned by
 * the Lua stack, so nothing leaks when a later step raises.
 * call_check_id: the argument at idx as an id: a string of 1 to 256 bytes without NUL,
 * not "." or ".." (dot segments that URL normalization would remove), or an integer
 * (its decimal text, which replaces it on the stack); anything else raises
 * "expected <what>". call_push_path: pushes prefix + percent-encoded id + suffix.
 * call_push_id_path: both. */
#define CALL_ID_MAX 256
const char *call_check_id(lua_State *L, int idx, const char *what);
const char *call_push_path(lua_State *L, const char *prefix, const char *id, const char *suffix);
const char *call_push_id_path(lua_State *L, int idx, const char *what, const char *prefix,
                              const char *suffix);

/* Settings that apply to every call, from the configuration's connectors block, and the
 * shared HTTP client on the loop: every connector's init and shutdown. */
int call_init(const struct config *cfg, char **errp);
void call_shutdown(void);
/* The same settings given directly (tests). */
struct call_settings {
    const char *ca_file;
    const char *proxy;
    double timeout;         /* per attempt, seconds */
    int max_attempts;       /* per call */
    int rate_limits;        /* 0: no limiter buckets (for benchmarks against a mock) */
    double retry_after_max; /* seconds: a longer Retry-After fails the call, default 300 */
};
void call_configure(const struct call_settings *s);
/* connectors.ca_file (NULL: the system's): for transfers made outside call_effect. */
const char *call_ca_file(void);

#endif
