/* apireq.h: one request to the people's API (engine/api.c) and what its handlers share:
 * who is calling, which tenants they may see from where they are, JSON replies with the
 * security headers, and audit rows. */
#ifndef KAGARI_APIREQ_H
#define KAGARI_APIREQ_H

#include <cjson/cJSON.h>

#include "engine/auth.h"
#include "engine/cidr.h"
#include "engine/http.h"
#include "engine/store.h"
#include "engine/util.h"

struct work;
struct config;

/* The settings block api = { ... } (engine/api.c reads it). */
struct api_conf {
    char *listen;           /* "127.0.0.1:8443"; NULL: no people's API */
    char *cert_file;        /* PEM certificate chain (required with listen) */
    char *key_file;         /* PEM private key */
    char *trusted_proxies;  /* "192.0.2.10, 2001:db8::10/128": X-Forwarded-For is read only
                             * from these; NULL: never */
    double session_idle;    /* seconds without a request before a session ends; 30 min */
    double session_max;     /* seconds a session lasts at most; 12 h */
    size_t password_memory; /* Argon2id memory in bytes; 64 MiB */
    int password_passes;    /* Argon2id passes; 3 */
    char *issuer;           /* the name authenticator apps show; "kagari" */
    int max_conns;          /* 256 */
};

/* Failed logins per client address (password spraying across many users): a score that
 * each failure raises by one and that decays by one every API_ADDR_DECAY_MS; past
 * API_ADDR_FAILURES, logins from that address are refused (429) until it decays. */
#define API_ADDR_FAILURES 20
#define API_ADDR_DECAY_MS 30000
#define API_ADDR_SLOTS 256
struct api_addr_score {
    char addr[64];
    double score;
    int64_t at; /* ms of the last update */
};

/* What every request of one listener shares. */
struct api_state {
    struct api_addr_score scores[API_ADDR_SLOTS];
    struct store *st; /* control.db, borrowed */
    const struct api_conf *conf;
    struct auth_cost cost;
    struct work *work; /* Argon2id off the loop */
    struct cidr *proxies;
    size_t nproxies;
    char *dummy_hash; /* verified against for unknown users, so they cost the same time */
    unsigned long long requests, denied, logins, login_failures;
    /* The playbook view: the daemon's configuration (its playbook folders) and its reload
     * of the playbook folder (api_set_reload; NULL: none), for a deployment by a person. */
    const struct config *cfg;
    int (*reload)(void);
};

enum api_role_bits {
    ROLE_ADMIN = 1,
    ROLE_ENGINEER = 2,
    ROLE_ANALYST = 4,
    ROLE_AUDITOR = 8,
    ROLE_OPERATOR = 16, /* the platform operator, in every tenant */
    ROLE_ANY = 31,
};

#define API_MAX_PARAMS 4

struct api_req {
    struct api_state *api;
    struct http_request *http; /* NULL once answered */
    char addr[64];             /* the client's address (X-Forwarded-For from a trusted proxy) */
    int64_t now;               /* ms, when the request began */
    /* The caller, once authenticated (user.id 0: nobody). */
    struct store_user user;
    struct store_role *roles;
    size_t nroles;
    int64_t token_id;               /* > 0: by a personal API token */
    char session_hash[65];          /* "" unless by a session cookie */
    char param[API_MAX_PARAMS][80]; /* the ":" segments of the route's path */
};

void apireq_free(struct api_req *r); /* NULL is a no-op */

/* Answer (once) and free r: the security headers, then body as JSON (taken: deleted
 * here; NULL: no body). */
void apireq_json(struct api_req *r, int status, cJSON *body);
/* {"error": code, "message": message}. */
void apireq_error(struct api_req *r, int status, const char *code, const char *message);
/* The same 404 for an unknown object and for one of a tenant the caller cannot see. */
void apireq_not_found(struct api_req *r);
/* The tenant named by the path's first parameter with its database open, or NULL after
 * answering 404 (unknown, or not open in this daemon: the same answer). */
struct tenant *apireq_tenant(struct api_req *r);
/* The request's body parsed as one JSON object (nesting at most 4), or NULL after
 * answering 400 bad_json with the parser's reason. The caller deletes it. */
cJSON *apireq_body_object(struct api_req *r);

/* Append an audit row: the caller (user name or NULL) and address from r; detail is
 * JSON text or NULL. A failed write is logged, never hides the answer. */
void apireq_audit(struct api_req *r, const char *tenant, const char *action, const char *target,
                  const char *outcome, const char *detail);

/* 1 when tenant's allow-list admits addr (a tenant without one admits everyone). tenant
 * "*" is the platform operators' list. -1 on a database error. */
int apireq_address_allowed(struct api_state *a, const char *tenant, const char *addr);
/* The caller's role bits in tenant, counting only roles usable from r->addr: 0 when the
 * caller has none there (the tenant is then invisible: 404). */
int apireq_roles_in(struct api_req *r, const char *tenant);
/* A role's bit by name (0 for an unknown name), and its name. */
int apireq_role_bit(const char *name);

/* Times as RFC 3339 text (null for 0). */
void apireq_add_time(cJSON *o, const char *key, int64_t ms);
/* A positive decimal id of at most 18 digits, else -1. */
int64_t apireq_parse_id(const char *s);

#endif
