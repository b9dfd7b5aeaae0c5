/* mock.h: kagari-mock, a stateful stand-in for the Microsoft identity platform token
 * endpoint, Microsoft Graph (users, sign-ins, Identity Protection, security alerts_v2 and
 * incidents, Intune managedDevices), Microsoft Defender for Endpoint and the PAN-OS XML
 * API, for the engine's tests and benchmark. Internal header shared by the tests/mock C
 * files; nothing outside tests/mock includes it. The whole program is single-threaded (one
 * event_base). */
#ifndef KAGARI_MOCK_H
#define KAGARI_MOCK_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#include "engine/http.h"
#include "engine/util.h"

/* ---- mock_http.c: a small HTTP/1.1 server (TLS optional) ----
 *
 * The engine's http.c cannot close a connection without answering, nor hold a reply for
 * a while and then send it; a test double needs both ("drop" and latency faults). This
 * one parses heads with the engine's http_parse_head() and answers every request
 * synchronously from the handler through mhttp_respond() or mhttp_drop(), exactly once;
 * the delay is applied here, in order, one request at a time per connection. */

struct mhttp_server;
struct mhttp_conn;

struct mhttp_req {
    struct mhttp_conn *conn;
    struct http_head head; /* method, raw target, headers */
    char *path;            /* decoded path, no query */
    char *raw_path;        /* the target's path as sent (for absolute links) */
    char *query;           /* raw query, NULL when none */
    char *body;            /* NUL-terminated ("" when none) */
    size_t body_len;
    size_t nparams;
    char **pnames; /* decoded query parameters */
    char **pvalues;
    char peer[64];
    int answered;
};

typedef void (*mhttp_handler)(struct mhttp_req *req, void *arg);

/* ssl_ctx is borrowed (NULL: plain HTTP). */
struct mhttp_server *mhttp_new(struct event_base *base, SSL_CTX *ssl_ctx, mhttp_handler fn,
                               void *arg);
int mhttp_listen(struct mhttp_server *srv, const char *addr, char **errp) KG_WUR;
int mhttp_port(const struct mhttp_server *srv);
void mhttp_free(struct mhttp_server *srv); /* closes every connection; NULL is a no-op */

const char *mhttp_header(const struct mhttp_req *req, const char *name);
const char *mhttp_param(const struct mhttp_req *req, const char *name);
/* Answer req: status line, Date, extra header lines ("Name: value\r\n", may be NULL),
 * Content-Type and Content-Length (none for 204), body. With delay_ms > 0 the answer is
 * held that long (the connection reads nothing more meanwhile). Call exactly once. */
void mhttp_respond(struct mhttp_req *req, int status, const char *headers, const char *ctype,
                   const char *body, size_t len, int delay_ms);
/* Close the connection without answering, after delay_ms. Counts as the answer. */
void mhttp_drop(struct mhttp_req *req, int delay_ms);

/* Decode %XX (and '+' as space when plus is set) of s[0..n); NULL on a bad escape or %00. */

/* ---- mock_util.c: containers, ids, time, base64url, filters, paging, limiters ---- */

struct mvec {
    void **v;
    size_t n, cap;
};
void mvec_push(struct mvec *vec, void *p);
void mvec_remove(struct mvec *vec, void *p); /* keeps the order */
void mvec_free(struct mvec *vec);            /* the vector only, not the items */

/* String -> pointer, keys compared case-insensitively (ids, UPNs, host names). */
struct mmap_entry;
struct mmap {
    struct mmap_entry **b;
    size_t nb, n;
};
void mmap_put(struct mmap *m, const char *key, void *val); /* replaces */
void *mmap_get(const struct mmap *m, const char *key);
void mmap_del(struct mmap *m, const char *key);
void mmap_clear(struct mmap *m); /* entries only, not the values */
/* Call fn on every value (order unspecified). */
void mmap_each(const struct mmap *m, void (*fn)(void *val, void *arg), void *arg);

void mock_rand_init(void);
void mock_uuid(char out[37]);                                  /* random v4-shaped GUID */
void mock_seq_uuid(uint32_t prefix, uint64_t n, char out[37]); /* deterministic GUID */
void mock_fmt_now(char out[32]);
void mock_fmt_aad_time(int64_t ms, char out[32]); /* "2025-06-01 01:02:03Z" */
int64_t mock_parse_time_or(const char *s, int64_t dflt);
/* Replace every string "@now", "@now-5m", "@now+2h", "@now-3d", "@now-90s" in the tree
 * by that time (relative to now_ms) in RFC 3339. */
void mock_resolve_times(cJSON *item, int64_t now_ms);

char *mock_b64url_encode(const unsigned char *p, size_t n);
/* NULL on a malformed input; *outlen bytes, NUL-terminated. */
unsigned char *mock_b64url_decode(const char *s, size_t n, size_t *outlen);
unsigned char *mock_b64_decode(const char *s, size_t n, size_t *outlen);

/* cJSON helpers: set (replace or add) a member. */
void jset(cJSON *obj, const char *key, cJSON *val);
void jset_str(cJSON *obj, const char *key, const char *s); /* NULL -> null */
const char *jstr(const cJSON *obj, const char *key);       /* NULL when absent/not a string */

/* OData $filter: "a eq 'x' and b ge 2025-06-01T00:00:00Z and startswith(c,'y')". Only the
 * properties and operators listed for a collection are accepted (else 400). */
enum { FT_STR, FT_DATE, FT_NUM, FT_BOOL };
enum { OP_EQ = 1, OP_NE = 2, OP_GT = 4, OP_GE = 8, OP_LT = 16, OP_LE = 32, OP_SW = 64 };
#define OPS_CMP (OP_EQ | OP_NE | OP_GT | OP_GE | OP_LT | OP_LE)
struct fprop {
    const char *name; /* "status/errorCode" walks into objects */
    int type;
    int ops;
};
#define FILTER_MAX 8
struct fclause {
    const struct fprop *p;
    int op;
    int is_null;
    char *s;
    double num;
    int64_t ms;
    int b;
};
struct filter {
    int n;
    struct fclause c[FILTER_MAX];
};
int filter_parse(const char *text, const struct fprop *props, struct filter *f, char **errp) KG_WUR;
int filter_match(const struct filter *f, const cJSON *obj);
void filter_free(struct filter *f);

/* Sliding-window limiter: at most limit calls per window_ms (limit 0: off). */
struct limiter {
    int64_t *t; /* ring of accept times */
    int limit, head, n;
};
/* 0 when allowed (and recorded), else the ms until a slot frees up. */
int64_t limiter_take(struct limiter *l, int limit, int64_t window_ms, int64_t now);
void limiter_reset(struct limiter *l);

/* ---- requests as the API handlers see them ---- */

enum svc { SVC_CONTROL, SVC_TOKEN, SVC_GRAPH, SVC_INTUNE, SVC_MDE, SVC_PANOS, SVC_BLOB };
enum aud { AUD_NONE, AUD_GRAPH, AUD_DEFENDER, AUD_STORAGE };

/* Rate limiters (reference sections 2-6); per tenant. */
enum lim {
    LIM_NONE = -1,
    LIM_DEFENDER_MIN,
    LIM_DEFENDER_HOUR,
    LIM_IDP,
    LIM_SIGNINS,
    LIM_SECURITY,
    LIM_INTUNE_WRITES,
    LIM_DIRECTORY_WRITES,
    LIM_N
};

struct mreq;
typedef void (*route_fn)(struct mreq *r);

struct route {
    const char *method;
    const char *pattern; /* a segment that is a single star captures that segment */
    enum svc svc;
    const char *name; /* for counters and the request log */
    route_fn fn;
    const char *perms; /* "A|B": the app needs one of them (when it has a role list) */
    enum lim lim1, lim2;
};

struct m_tenant;
struct m_client;
struct m_token;

#define MREQ_CAPS 3
struct mreq {
    struct mhttp_req *h;
    const struct route *route;
    enum svc svc;
    char *cap[MREQ_CAPS];
    int ncap;
    struct m_token *tok;
    char base[300];        /* "https://127.0.0.1:4443": absolute links */
    char request_id[40];   /* Graph request-id */
    const char *log_route; /* set by a handler: its request-log name, else the route's */
    /* the answer */
    int status;
    const char *ctype;
    char *body;
    size_t body_len;
    struct buf headers;
};

/* Answer helpers; each sets the reply (the last call wins). */
/* Any body (takes it; NULL with len 0: none) with its Content-Type. */
void mreq_set(struct mreq *r, int status, const char *ctype, char *body, size_t len);
void mreq_json(struct mreq *r, int status, cJSON *obj); /* takes obj */
void mreq_empty(struct mreq *r, int status);
void mreq_header(struct mreq *r, const char *name, const char *value);
void mreq_graph_error(struct mreq *r, int status, const char *code, const char *fmt, ...)
    KG_PRINTF(4, 5);
void mreq_mde_error(struct mreq *r, int status, const char *code, const char *fmt, ...)
    KG_PRINTF(4, 5);
void mreq_intune_error(struct mreq *r, int status, const char *code, const char *fmt, ...)
    KG_PRINTF(4, 5);
void mreq_aad_error(struct mreq *r, int status, const char *error, int aadsts, const char *fmt, ...)
    KG_PRINTF(5, 6);
/* An error in the shape of r->svc. */
void mreq_error(struct mreq *r, int status, const char *code, const char *fmt, ...) KG_PRINTF(4, 5);
/* Does the caller's app hold one of perms ("A|B")? Answers 403 and returns 0 if not. */
int mreq_perm(struct mreq *r, const char *perms);
/* The request body as a JSON object; an empty body is {} when empty_ok. NULL after
 * answering 400 (in the service's shape, with code). Caller deletes. */
cJSON *mreq_body_object(struct mreq *r, int empty_ok, const char *code);

/* Paging (Graph): items are entities, fn renders one (new cJSON). Parses $top, $skip,
 * $skiptoken, $count; writes "value", "@odata.nextLink" (absolute, original options plus
 * an opaque $skiptoken) and answers 200. Returns -1 after answering 400. */
typedef cJSON *(*render_fn)(void *item, struct mreq *r, void *ctx);
int mock_page(struct mreq *r, void **items, size_t n, size_t def_size, size_t max_size,
              const char *context, render_fn fn, void *ctx);
/* MDE lists: $top (<= 10000) and $skip, no next link. */
int mock_list_mde(struct mreq *r, void **items, size_t n, const char *context, render_fn fn,
                  void *ctx);

/* ---- state (mock_state.c) ---- */

struct m_tenant {
    char *id;
    cJSON *domains; /* array of strings */
    struct limiter lim[LIM_N];
};

struct m_client {
    struct m_tenant *tenant;
    char *client_id;
    char *secret;
    int secret_expired;
    char *display_name;
    cJSON *roles;   /* array of permission names, NULL: every permission */
    EVP_PKEY *pkey; /* from the registered certificate, NULL: assertions not verified */
    char x5t[64];   /* base64url SHA-1 of the certificate DER */
    char x5t256[64];
    unsigned long issued;
};

struct m_token {
    char *token;
    struct m_client *client;
    enum aud aud;
    char *scope;
    int64_t exp_ms;
};

struct m_user {
    cJSON *obj;
    int privileged;
    unsigned long n_disable, n_enable, n_revoke, n_patch;
};

struct m_risky {
    cJSON *obj;
    cJSON *history;
    int pending; /* confirm/dismiss accepted, not yet applied */
    int pending_reads;
    char pend_level[16], pend_state[32], pend_detail[48];
    unsigned long n_confirm, n_dismiss;
};

struct m_secitem { /* an alert or an incident */
    cJSON *obj;
    unsigned long n_update, n_comment;
};

#define MDE_ACTION_TYPES 8
struct m_machine {
    cJSON *obj;
    cJSON *action_results; /* {"Isolate":"Failed","*":"TimeOut"} or NULL */
    cJSON *ip_history;     /* [{"ip":..,"from":..,"to":..}] or NULL */
    int offline;           /* actions stay Pending */
    int isolated, restricted, offboarded;
    unsigned long n_action[MDE_ACTION_TYPES];
    unsigned long n_rejected, n_completed;
};

struct m_action {
    cJSON *obj;
    struct m_machine *m;
    int type;
    int polls;
    int final_applied;
    char final_status[16];
};

struct m_indicator {
    cJSON *obj;
    char *key; /* "type|value" */
};

struct m_devresult {
    char name[40];
    unsigned long at_read;
};

struct m_device {
    cJSON *obj;
    unsigned long reads;
    struct m_devresult *res; /* parallel to deviceActionResults */
    size_t nres;
    cJSON *counts; /* {"remoteLock": n} */
};

struct fault {
    char *prefix;
    char method[12];
    int status;
    int retry_after;      /* -1: no header */
    int retry_after_date; /* send it as an HTTP-date (now + retry_after) */
    int count;
    int delay_ms;
    int drop;
    int malformed; /* enum mock_junk */
};

/* What a "malformed" fault answers instead of the service's body. */
enum mock_junk {
    JUNK_NONE = 0,
    JUNK_TRUNCATED, /* true: cut JSON (cut XML for PAN-OS) */
    JUNK_HTML,      /* a proxy's HTML error page, text/html */
    JUNK_DEEP,      /* JSON nested 10000 deep */
    JUNK_NUL,       /* JSON with a \u0000 escape */
    JUNK_GZIP,      /* gzip bytes labelled JSON, without Content-Encoding */
    JUNK_BR,        /* JSON labelled Content-Encoding: br (not asked for) */
};
/* "truncated", "html", ... -> enum mock_junk; 0 when unknown. */
int mock_junk_kind(const char *name);
const char *mock_junk_name(int kind);

struct delay {
    char *prefix;
    int delay_ms;
};

#define LOG_RING 2048
struct logent {
    char method[12];
    char *path;
    char *query;
    const char *route;
    char *idem_key; /* the request's Idempotency-Key header, or NULL */
    int status;
    double ms;
    int64_t at;
};

struct mock_config {
    int token_lifetime;
    int poll_steps;
    int page_size;         /* 0: each service's own default */
    int duplicate_pending; /* MDE duplicate action: 1 = return the pending one (201) */
    int empty_page;        /* Graph lists: the second page is empty */
    int signins_premium;   /* 0: signIns answer 403 (no P1/P2 license) */
    int processing_reads;  /* riskyUsers: reads showing isProcessing before the final state */
    int indicator_cap;
    int limits_enabled;
    int limit[LIM_N]; /* calls per window */
    char action_final[16];
};

struct mock {
    struct event_base *base;
    struct mhttp_server *srv;
    int tls;
    int port;
    struct mock_config cfg, cfg0;
    /* Graph lists: the template of the next link (config next_link: {base}, {path} and
     * {query} stand for the request's scheme and host, its path and the next page's
     * query), or NULL for the service's own link. */
    char *next_link;
    cJSON *seed; /* the effective seed (defaults + --seed), times resolved */
    char salt[33];

    struct mvec tenants, clients;
    struct mmap tenant_map; /* id and domains */
    struct mmap client_map; /* "tenantid|clientid" */
    struct mmap tokens;

    struct mvec users;
    struct mmap user_map; /* id and UPN */
    struct mvec signins;  /* cJSON objects, newest first */
    struct mvec risky;
    struct mmap risky_map;
    struct mvec detections; /* cJSON objects */
    struct mvec alerts, incidents;
    struct mmap alert_map, incident_map;
    struct mvec machines;
    struct mmap machine_map; /* id and computerDnsName */
    struct mvec actions;     /* newest first */
    struct mmap action_map;
    struct mvec indicators;
    struct mmap indicator_map; /* id */
    struct mmap indicator_key; /* "type|value" */
    struct mvec devices;
    struct mmap device_map;
    uint64_t next_action, next_indicator, next_history;

    /* counters */
    unsigned long tokens_issued, requests_total, answered_401, answered_429, faults_applied;
    unsigned long ind_added, ind_updated, ind_removed;
    unsigned long *route_count; /* per route */
    cJSON *token_counts;        /* {"tenant client scope": n} */

    struct mvec faults;
    struct mvec delays;
    struct logent log[LOG_RING];
    size_t log_next, log_n;
};

extern struct mock mock;

/* mock_state.c */
int mock_state_init(const char *seed_path, char **errp) KG_WUR; /* tenants, clients, data */
void mock_state_reset(void); /* data and counters back to the seed */
void mock_state_free(void);
const char *mock_default_seed(void); /* mock_seed.c: JSON with ' for " */
struct m_tenant *mock_tenant(const char *id_or_domain);
struct m_user *mock_user(const char *id_or_upn);
struct m_machine *mock_machine(const char *id_or_name);
cJSON *mock_counters_json(void);
cJSON *mock_machine_state(struct m_machine *m);
cJSON *mock_user_state(struct m_user *u);
int64_t mock_now(void);

/* mock_main.c */
cJSON *mock_route_counts(void); /* {"route name": n} for routes called at least once */
void mock_route_counts_reset(void);

/* mock_control.c: the /_mock/ control API and the request log */
void control_handle(struct mhttp_req *h);
void mock_log_add(const char *method, const char *path, const char *query, const char *route,
                  const char *idem_key, int status, double ms);
void mock_log_clear(void);

/* mock_token.c */
void token_endpoint(struct mreq *r);
/* Check the bearer token for the route's audience; answers 401 and returns -1 if bad. */
int token_check(struct mreq *r, enum aud need);
void token_expire_all(void);
void token_free_all(void);

/* mock_graph.c */
extern const struct route graph_routes[];
/* mock_mde.c */
extern const struct route mde_routes[];
const char *mde_action_type_name(int type);
int mde_action_type(const char *name); /* -1 when unknown */
void mde_apply_final(struct m_action *a);
cJSON *mde_render_action(struct m_action *a);
/* mock_intune.c */
extern const struct route intune_routes[];
/* mock_panos.c: GET/POST /api/. Admins come from the seed's panosAdmins (once); the
 * registered IP->tag mappings and the PAN-OS counters live here and go back to empty on
 * panos_reset(). */
#define PANOS_CTYPE "application/xml; charset=UTF-8"
extern const struct route panos_routes[];
int panos_init(char **errp) KG_WUR;
void panos_reset(void);
void panos_clear_registrations(void);
void panos_free(void);
/* <response status="error" code="code"><result><msg>msg</msg></result></response>. */
void panos_error(struct mreq *r, int status, int code, const char *msg);
cJSON *panos_counters_json(void);
cJSON *panos_state_json(void);
/* The candidate configuration (address objects, static groups), commit jobs, the lock
 * and their counters, for GET /_mock/state/panos; POST changes the simulation (lock,
 * fail_next_commit, commit_polls, start_commit): -1 with *errp, nothing applied. */
cJSON *panos_config_json(void);
int panos_control(const cJSON *o,
                  char **errp) KG_WUR; /* the registered IPs, expired tags dropped first */

/* mock_smtp.c: the SMTP server (STARTTLS and implicit TLS listeners on loopback). */
int mock_smtp_start(SSL_CTX *ssl, char **errp) KG_WUR;
void mock_smtp_stop(void);
cJSON *mock_smtp_json(void); /* ports, fault mode, recorded messages */
int mock_smtp_config(const cJSON *o, char **errp) KG_WUR;

/* mock_blob.c: Azure Blob storage under /blob/<account>/ (List Blobs, ranged Get Blob,
 * SAS and bearer tokens); its control (POST /_mock/blob: append, put, delete, container,
 * sas, config: 0 with *reply, or -1 with *errp) and state (GET /_mock/blob). */
void mock_blob_handle(struct mreq *r);
void blob_error(struct mreq *r, int status, const char *code, const char *msg);
int mock_blob_control(const cJSON *o, cJSON **reply, char **errp) KG_WUR;
cJSON *mock_blob_json(void);
void mock_blob_reset(void);

/* mock_hooks.c: webhook receivers under /hooks/<name>. */
void mock_hooks_receive(struct mreq *r);
int mock_hooks_config(const cJSON *o, char **errp) KG_WUR;
cJSON *mock_hooks_json(const char *name);
void mock_hooks_free(void);

#endif
