/* intake.c: the HTTP intake source: POST /api/v1/alerts, /healthz and /metrics. */
#include "engine/intake.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/admit.h"
#include "engine/http.h"
#include "engine/json.h"
#include "engine/log.h"
#include "engine/loop.h"
#include "engine/metrics.h"
#include "engine/normalize.h"
#include "engine/plugin.h"
#include "engine/run.h"
#include "engine/store.h"
#include "engine/tenant.h"
#include "engine/tls.h"
#include "engine/work.h"

#define INTAKE_MAX_ALERTS 10000 /* per request */
/* Bodies smaller than this are parsed on the loop: a thread's hand-off would cost more
 * than their parse (a few records). */
#define INTAKE_INLINE_BYTES (16 * 1024)
/* Rejected requests are logged one line each, at most INTAKE_REJECT_LINES per reason in
 * each INTAKE_REJECT_WINDOW_US; the rest are counted and reported in one
 * intake.rejected_suppressed line per reason when its window ends. */
#define INTAKE_REJECT_LINES 5
#define INTAKE_REJECT_WINDOW_US 10000000
#define INTAKE_REJECT_REASONS 32 /* distinct reasons tracked; the codes are a fixed set */

/* A record of an envelope that could not be understood: left out, the rest go on. */
struct reject {
    size_t index; /* its position in the envelope */
    char *source; /* what it was taken for, or "unknown" */
    char *error;
};

/* What a body normalized to: the alerts to admit and the records left out. */
struct tree {
    struct alert *alerts;
    size_t n;
    size_t total; /* records in the body, accepted or not */
    struct reject *rej;
    size_t nrej;
};

/* One accepted request waiting for its batch's commit. */
struct pending {
    struct intake *in;
    struct http_request *req;
    int64_t t0_us;      /* when the request was complete: the ack latency starts here */
    struct reject *rej; /* records left out, answered with their reasons */
    size_t nrej, total;
    char tenant[64];
};

/* Records normalized and rejected per source, for /metrics. The names come from
 * senders (generic alerts name their own source), so their number is capped; later
 * names count as "other". */
#define INTAKE_SOURCES_MAX 64
struct source_count {
    char name[65];
    unsigned long long ok, bad;
};
struct source_tally {
    struct source_count v[INTAKE_SOURCES_MAX + 1]; /* the last is "other" */
    size_t n;
};

/* One alert request's body to parse and normalize: on a parser thread for a large body,
 * else on the loop. The thread touches only the job (and the body, which the request
 * keeps until its reply: an orphaned request, whose client left, keeps it too). */
struct parse_job {
    struct intake *in;
    struct http_request *req;
    char tenant[64];
    char *hint; /* ?source=, or NULL */
    int lines;  /* JSON Lines */
    const char *body;
    size_t len;
    int64_t now_ms, t0_us;
    /* The result, read on the loop. */
    int rc;           /* 0 done, -1 refused (code, err), 1 not parsed (shutting down) */
    const char *code; /* "bad_json" or "bad_alert" */
    char *err;
    struct tree tr;
    struct source_tally tally;
    struct parse_job *next; /* in its tenant's queue */
};

/* A tenant's bodies waiting for a parser thread, in arrival order. */
struct parse_queue {
    char tenant[64];
    struct parse_job *head, *tail;
    size_t n, bytes;
};

/* Accepted requests of one tenant since the last intake.accepted line: one line per
 * tenant per loop iteration, however many requests it answered. */
#define INTAKE_ACC_PEERS 3 /* peers named in the line; more are counted */
struct accepted {
    char tenant[64];
    unsigned requests;
    size_t alerts, fresh, dups, events, left_out;
    char first_req[24], last_req[24];
    char peers[INTAKE_ACC_PEERS][48];
    unsigned npeers, more_peers;
    double ms_max;
};

/* The log budget of one rejection reason (see INTAKE_REJECT_LINES). */
struct reject_reason {
    char code[32];
    int64_t window_us;             /* when its current window began */
    unsigned logged;               /* lines in the current window */
    unsigned long long suppressed; /* rejections not logged in the current window */
};

/* Upper bounds (seconds) of the ack latency histogram buckets: request complete to 202
 * sent, which includes the commit and every run that finished in that iteration. */
static const double ack_bounds[] = { 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015,
                                     0.002,  0.003,   0.005,  0.0075,  0.01,  0.025,
                                     0.05,   0.1,     0.25,   0.5,     1.0,   2.5 };
#define ACK_NB (sizeof(ack_bounds) / sizeof(ack_bounds[0]))

/* A tenant's token bucket of alerts (intake.tenant_rate, intake.tenant_burst). */
struct bucket {
    char tenant[64];
    double tokens;   /* alerts it may send now; below 0 after a large request (a debt) */
    int64_t last_us; /* when tokens was last brought up to date */
};

struct intake {
    struct http_server *srv;
    SSL_CTX *ssl;
    int max_queued;
    int rate, burst;        /* alerts per second and bucket size; rate 0: no limit */
    struct bucket *buckets; /* one per tenant that has sent alerts; few, searched in order */
    size_t nbuckets;
    char *listen; /* as configured */
    unsigned long long requests, rejected, shed, throttled;
    unsigned long long ack_count, ack_buckets[ACK_NB + 1];
    double ack_sum;
    struct source_tally tally;
    struct reject_reason reasons[INTAKE_REJECT_REASONS];
    size_t nreasons;
    struct event *reject_timer; /* reports suppressed counts when windows end */
    struct accepted *acc;       /* per tenant, since the last flush */
    size_t nacc;
    struct event *acc_ev; /* made active by the first acceptance: flushes next pass */
    int acc_pending;
    /* Parsing off the loop: the pool, the tenants' queues (served in turn, so that one
     * tenant's backlog never delays another's bodies by more than one per thread), the
     * jobs handed to the pool, and the limits. */
    struct work *pool;
    int nthreads;
    struct parse_queue *queues;
    size_t nqueues, rr;
    size_t queued, queued_bytes; /* waiting in the queues */
    int inflight;                /* with the pool */
    size_t queue_max;            /* bytes per tenant (intake.parse_queue) */
    unsigned long long parsed_loop, parsed_threads, parse_shed;
    int stopping;
};

static void
rejects_free(struct reject *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(r[i].source);
        free(r[i].error);
    }
    free(r);
}

static void
pending_free(struct pending *p)
{
    rejects_free(p->rej, p->nrej);
    free(p);
}

/* Count records of source name (NULL: "unknown") as normalized (ok) and rejected (bad).
 * tally NULL counts nothing. */
static void
tally_add(struct source_tally *tally, const char *name, unsigned long long ok,
          unsigned long long bad)
{
    struct source_count *c = NULL;

    if (tally == NULL) {
        return;
    }
    if (name == NULL) {
        name = "unknown";
    }
    for (size_t i = 0; i < tally->n; i++) {
        if (strcmp(tally->v[i].name, name) == 0) {
            c = &tally->v[i];
            break;
        }
    }
    if (c == NULL) {
        /* "other" is the overflow's series (a job's overflow merged here, or a sender's
         * own source of that name): one series of that name, never two. */
        if (tally->n < INTAKE_SOURCES_MAX && strcmp(name, "other") != 0) {
            c = &tally->v[tally->n++];
            snprintf(c->name, sizeof(c->name), "%s", name);
        } else {
            c = &tally->v[INTAKE_SOURCES_MAX];
            snprintf(c->name, sizeof(c->name), "other");
        }
    }
    c->ok += ok;
    c->bad += bad;
}

static void
count_source(struct source_tally *tally, const char *name, int ok)
{
    tally_add(tally, name, ok != 0, ok == 0);
}

/* Add a job's counts to the intake's (the "other" of a full job table stays "other"). */
static void
tally_merge(struct source_tally *into, const struct source_tally *from)
{
    for (size_t i = 0; i <= INTAKE_SOURCES_MAX; i++) {
        const struct source_count *c = &from->v[i];

        if (i < from->n || (i == INTAKE_SOURCES_MAX && c->name[0] != '\0')) {
            tally_add(into, c->name, c->ok, c->bad);
        }
    }
}

/* Log what was accepted since the last flush: one intake.accepted line per tenant. */
static void
acc_flush(evutil_socket_t fd, short what, void *arg)
{
    struct intake *in = arg;

    (void)fd;
    (void)what;
    in->acc_pending = 0;
    for (size_t i = 0; i < in->nacc; i++) {
        struct accepted *a = &in->acc[i];
        char peers[4 * 48 + 16] = "";
        size_t len = 0;

        if (a->requests == 0) {
            continue;
        }
        for (unsigned j = 0; j < a->npeers; j++) {
            len += (size_t)snprintf(peers + len, sizeof(peers) - len, "%s%s", j ? "," : "",
                                    a->peers[j]);
        }
        if (a->more_peers > 0) {
            snprintf(peers + len, sizeof(peers) - len, ",+%u", a->more_peers);
        }
        /* Records left out of an envelope (answered in the 202's "rejected") are logged
         * at warn, so that a grep for warnings finds them. */
        log_msg(a->left_out > 0 ? KG_LOG_WARN : KG_LOG_INFO,
                "intake.accepted tenant=%s requests=%u alerts=%zu new=%zu duplicates=%zu "
                "events=%zu left_out=%zu peers=%s request=%s%s%s ms_max=%.1f",
                a->tenant, a->requests, a->alerts, a->fresh, a->dups, a->events, a->left_out, peers,
                a->first_req, a->requests > 1 ? ".." : "", a->requests > 1 ? a->last_req : "",
                a->ms_max);
        memset(a, 0, sizeof(*a));
    }
    in->nacc = 0;
}

/* Count one accepted request for the next intake.accepted line. */
static void
acc_add(struct intake *in, const char *tenant, struct http_request *req,
        const struct admit_result *res, size_t left_out, double ms)
{
    const char *peer = http_request_peer(req);
    struct accepted *a = NULL;
    unsigned j;

    for (size_t i = 0; i < in->nacc; i++) {
        if (strcmp(in->acc[i].tenant, tenant) == 0) {
            a = &in->acc[i];
            break;
        }
    }
    if (a == NULL) {
        in->acc = xrealloc(in->acc, (in->nacc + 1) * sizeof(*in->acc));
        a = &in->acc[in->nacc++];
        memset(a, 0, sizeof(*a));
        snprintf(a->tenant, sizeof(a->tenant), "%s", tenant);
    }
    if (a->requests++ == 0) {
        snprintf(a->first_req, sizeof(a->first_req), "%s", http_request_id(req));
    }
    snprintf(a->last_req, sizeof(a->last_req), "%s", http_request_id(req));
    a->alerts += res->n;
    a->fresh += res->accepted;
    a->dups += res->duplicates;
    a->events += res->events;
    a->left_out += left_out;
    if (ms > a->ms_max) {
        a->ms_max = ms;
    }
    for (j = 0; j < a->npeers && strcmp(a->peers[j], peer) != 0; j++) {
    }
    if (j == a->npeers) {
        if (a->npeers < INTAKE_ACC_PEERS) {
            snprintf(a->peers[a->npeers++], sizeof(a->peers[0]), "%s", peer);
        } else {
            a->more_peers++; /* requests from further peers, not distinct peers */
        }
    }
    if (!in->acc_pending) {
        in->acc_pending = 1;
        event_active(in->acc_ev, EV_TIMEOUT, 0);
    }
}

static const char *bearer(struct http_request *req);

/* End r's window when it is over: report what it suppressed. */
static void
reject_window_end(struct reject_reason *r, int64_t now_us)
{
    if (now_us - r->window_us < INTAKE_REJECT_WINDOW_US) {
        return;
    }
    if (r->suppressed > 0) {
        log_warn("intake.rejected_suppressed reason=%s suppressed=%llu window_s=%d", r->code,
                 r->suppressed, INTAKE_REJECT_WINDOW_US / 1000000);
    }
    r->window_us = now_us;
    r->logged = 0;
    r->suppressed = 0;
}

static void
reject_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct intake *in = arg;
    int64_t now = util_mono_us();

    (void)fd;
    (void)what;
    for (size_t i = 0; i < in->nreasons; i++) {
        reject_window_end(&in->reasons[i], now);
    }
}

/* The http server's on_reject: one log line per rejected request (tenant when known,
 * peer, reason, request id), within each reason's budget. */
static void
on_reject(const struct http_reject *rej, void *arg)
{
    struct intake *in = arg;
    int64_t now = util_mono_us();
    struct reject_reason *r = NULL;
    const char *client = rej->client;
    char *msg;

    for (size_t i = 0; i < in->nreasons; i++) {
        if (strcmp(in->reasons[i].code, rej->code) == 0) {
            r = &in->reasons[i];
            break;
        }
    }
    if (r == NULL) {
        /* Full (a code list grown past the cap): share the last slot. */
        r = &in->reasons[in->nreasons < INTAKE_REJECT_REASONS ? in->nreasons++
                                                              : INTAKE_REJECT_REASONS - 1];
        if (r->code[0] == '\0') {
            snprintf(r->code, sizeof(r->code), "%s", rej->code);
            r->window_us = now;
        }
    }
    reject_window_end(r, now);
    if (r->logged >= INTAKE_REJECT_LINES) {
        r->suppressed++;
        return;
    }
    r->logged++;
    if (client == NULL && rej->req != NULL) {
        /* Refused by the HTTP layer (413 for a body too large, say) before the handler
         * read the token: name the tenant when the head carries a valid one. */
        const char *token = bearer(rej->req);
        struct tenant *t = token != NULL ? tenant_for_token(token) : NULL;

        client = t != NULL ? t->id : NULL;
    }
    msg = util_cut_text(rej->message != NULL ? rej->message : "", 200);
    log_warn("intake.rejected status=%d reason=%s tenant=%s peer=%s request=%s method=%s "
             "path=%s message=%s",
             rej->status, rej->code, client ? client : "-", rej->peer, rej->request_id,
             rej->method ? log_quote(rej->method) : "-", rej->path ? log_quote(rej->path) : "-",
             log_quote(msg));
    free(msg);
}

/* Entry i of the answer's ids: the alert's id, null for a record stored as an event
 * (events have no alert id; they are found with events.query and kagari events). */
static void
id_put(struct buf *b, size_t i, const struct alert *a)
{
    if (a->cls == ALERT_CLASS_EVENT) {
        (void)!buf_printf(b, "%snull", i ? "," : "");
    } else {
        (void)!buf_printf(b, "%s%lld", i ? "," : "", (long long)a->id);
    }
}

/* The batch's answer: 202 with the ids once durable, else an error. */
static void
answer(void *arg, const struct admit_result *res)
{
    struct pending *p = arg;
    struct buf b;

    switch (res->status) {
    case ADMIT_OK:
        break;
    case ADMIT_SHUTTING_DOWN:
        http_reply_error(p->req, 503, "shutting_down", "the engine is stopping");
        pending_free(p);
        return;
    case ADMIT_LOCKED:
        http_reply_header(p->req, "Retry-After", "1");
        http_reply_error(p->req, 503, "store_locked",
                         "the tenant's database is locked by another process; retry later");
        pending_free(p);
        return;
    case ADMIT_UNAVAILABLE:
        http_reply_header(p->req, "Retry-After", "1");
        /* fall through */
    case ADMIT_FAILED:
        http_reply_error(p->req, res->status == ADMIT_FAILED ? 500 : 503, "store_unavailable",
                         "the alerts could not be stored durably; retry later");
        pending_free(p);
        return;
    }
    buf_init(&b, 0);
    /* accepted and duplicates count every record; alerts and events split them. */
    (void)!buf_printf(&b,
                      "{\"accepted\":%zu,\"duplicates\":%zu,\"alerts\":{\"accepted\":%zu,"
                      "\"duplicates\":%zu},\"events\":{\"accepted\":%zu,\"duplicates\":%zu},"
                      "\"ids\":[",
                      res->accepted, res->duplicates, res->accepted - res->events,
                      res->duplicates - res->event_duplicates, res->events, res->event_duplicates);
    if (p->nrej == 0) {
        for (size_t i = 0; i < res->n; i++) {
            id_put(&b, i, &res->alerts[i]);
        }
        (void)!buf_puts(&b, "]}");
    } else {
        /* One entry per record of the envelope: the alert's id, or null where it was
         * stored as an event or left out. */
        size_t next = 0, r = 0;

        for (size_t i = 0; i < p->total; i++) {
            if (r < p->nrej && p->rej[r].index == i) {
                (void)!buf_printf(&b, "%snull", i ? "," : "");
                r++;
            } else if (next < res->n) {
                id_put(&b, i, &res->alerts[next++]);
            }
        }
        (void)!buf_puts(&b, "],\"rejected\":[");
        for (size_t i = 0; i < p->nrej; i++) {
            (void)!buf_printf(&b, "%s{\"index\":%zu,\"source\":", i ? "," : "", p->rej[i].index);
            (void)!buf_json_string(&b, p->rej[i].source, strlen(p->rej[i].source));
            (void)!buf_puts(&b, ",\"error\":");
            (void)!buf_json_string(&b, p->rej[i].error, strlen(p->rej[i].error));
            (void)!buf_puts(&b, "}");
        }
        (void)!buf_puts(&b, "]}");
    }
    {
        double secs = (double)(util_mono_us() - p->t0_us) / 1e6;
        size_t i = 0;

        while (i < ACK_NB && secs > ack_bounds[i]) {
            i++;
        }
        p->in->ack_buckets[i]++;
        p->in->ack_count++;
        p->in->ack_sum += secs;
    }
    acc_add(p->in, p->tenant, p->req, res, p->nrej, (double)(util_mono_us() - p->t0_us) / 1000.0);
    http_reply(p->req, 202, "application/json", b.data, b.len);
    buf_free(&b);
    pending_free(p);
}

/* Tenant t's bucket, refilled up to now (created full). */
static struct bucket *
bucket_for(struct intake *in, const struct tenant *t)
{
    int64_t now = util_mono_us();
    struct bucket *b = NULL;

    for (size_t i = 0; i < in->nbuckets; i++) {
        if (strcmp(in->buckets[i].tenant, t->id) == 0) {
            b = &in->buckets[i];
            break;
        }
    }
    if (b == NULL) {
        in->buckets = xrealloc(in->buckets, (in->nbuckets + 1) * sizeof(*in->buckets));
        b = &in->buckets[in->nbuckets++];
        snprintf(b->tenant, sizeof(b->tenant), "%s", t->id);
        b->tokens = in->burst;
        b->last_us = now;
    }
    b->tokens += (double)(now - b->last_us) / 1e6 * in->rate;
    if (b->tokens > in->burst) {
        b->tokens = in->burst;
    }
    b->last_us = now;
    return b;
}

/* The tenant's rate limit: a request is let through while its bucket holds at least one
 * alert, and costs one alert now (bad requests cost that much too); handle_alerts takes
 * the rest of its alerts once it knows how many there are. The bucket may go into debt,
 * so a request of more alerts than it holds (up to 10,000) is never refused forever, and
 * the tenant then waits until the debt is paid. Returns 0, or -1 after answering 429 with
 * the whole seconds until the bucket holds one alert again as Retry-After. */
static int
rate_check(struct intake *in, struct http_request *req, const struct tenant *t, struct bucket **bp)
{
    struct bucket *b;
    char secs[32];

    *bp = NULL;
    if (in->rate <= 0) {
        return 0;
    }
    b = bucket_for(in, t);
    if (b->tokens >= 1) {
        b->tokens -= 1;
        *bp = b;
        return 0;
    }
    in->throttled++;
    snprintf(secs, sizeof(secs), "%.0f", ceil((1 - b->tokens) / in->rate)); /* >= 1 */
    log_debug("intake.throttled tenant=%s retry_after=%s", t->id, secs);
    http_reply_header(req, "Retry-After", secs);
    http_reply_error(req, 429, "rate_limited",
                     "the tenant's alert rate (intake.tenant_rate) is exceeded; retry later");
    return -1;
}

static const char *
bearer(struct http_request *req)
{
    const char *h = http_request_header(req, "Authorization");

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0) {
        return NULL;
    }
    h += 7;
    while (*h == ' ') {
        h++;
    }
    return *h != '\0' ? h : NULL;
}

static int
is_json_type(const char *ct)
{
    size_t n = strlen("application/json");

    if (ct == NULL || strncasecmp(ct, "application/json", n) != 0) {
        return 0;
    }
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

/* JSON Lines (one record per line), the form of Azure diagnostic logs archived to a
 * storage account: application/x-ndjson, application/jsonl or application/json-lines. */
static int
is_lines_type(const char *ct)
{
    static const char *const types[] = { "application/x-ndjson", "application/jsonl",
                                         "application/json-lines" };

    for (size_t i = 0; ct != NULL && i < sizeof(types) / sizeof(types[0]); i++) {
        size_t n = strlen(types[i]);

        if (strncasecmp(ct, types[i], n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ')) {
            return 1;
        }
    }
    return 0;
}

static void
alerts_free(struct alert *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        alert_free(&v[i]);
    }
    free(v);
}

static void
tree_free(struct tree *t)
{
    alerts_free(t->alerts, t->n);
    rejects_free(t->rej, t->nrej);
    memset(t, 0, sizeof(*t));
}

/* Add the reason record i was left out for. */
static void
tree_reject(struct tree *t, size_t i, const char *source, char *error_take)
{
    t->rej = xrealloc(t->rej, (t->nrej + 1) * sizeof(*t->rej));
    t->rej[t->nrej].index = i;
    t->rej[t->nrej].source = xstrdup(source);
    t->rej[t->nrej].error = error_take;
    t->nrej++;
}

/* The envelope member of root holding its records: "records" (Azure diagnostic settings,
 * Event Hub bodies, Defender streaming) or "value" (a Graph response page, which carries
 * "@odata.context" or "@odata.nextLink"). NULL for a plain alert object. */
static const char *
envelope_key(const cJSON *root)
{
    if (!cJSON_IsObject(root) || json_get(root, "source") != NULL) {
        return NULL;
    }
    if (json_get(root, "records") != NULL) {
        return "records";
    }
    /* A Graph page always says what it is; without that, "value" is an alert's own. */
    if (cJSON_IsArray(json_get(root, "value")) &&
        (json_get(root, "@odata.context") != NULL || json_get(root, "@odata.nextLink") != NULL)) {
        return "value";
    }
    return NULL;
}

/* Normalize the items of a parsed body (text, len): one alert object, an array of them
 * (all or nothing: the first bad one fails the request), or an envelope
 * {"records":[...]} / {"value":[...]} whose records are each normalized on their own: a
 * record that cannot be understood is left out with its reason in t->rej, the others go
 * on; only an envelope of nothing but such records fails. Each alert's raw is the
 * record's own bytes. tally (may be NULL) counts records per source. Touches nothing
 * but its arguments: it runs on a parser thread. */
static int
normalize_tree(struct source_tally *tally, const char *text, size_t len, const struct json_doc *doc,
               const char *hint, int64_t now, struct tree *t, char **errp)
{
    const cJSON *root = json_doc_root(doc);
    const cJSON *items = root;
    const cJSON *it;
    const char *key = envelope_key(root);
    const char *prefix = key != NULL ? key : "alerts";
    const struct json_span *spans = NULL;
    struct json_span *found = NULL; /* spans found by a scan of the text (freed here) */
    long nspans;
    size_t i = 0, n;
    char *err = NULL;
    const char *src;

    memset(t, 0, sizeof(*t));
    if (key != NULL) {
        items = json_get(root, key);
        if (!cJSON_IsArray(items)) {
            return kg_err(errp, "%s: expected an array", key);
        }
    } else if (!cJSON_IsArray(root) && !cJSON_IsObject(root)) {
        return kg_err(errp, "expected an alert object, an array of alerts or {\"records\":[...]}");
    }
    if (cJSON_IsObject(items)) {
        t->alerts = xcalloc(1, sizeof(*t->alerts));
        if (normalize_record(items, text, len, hint, now, &t->alerts[0], &src, &err) == -1) {
            count_source(tally, src, 0);
            kg_err(errp, "%s", err);
            free(err);
            tree_free(t);
            return -1;
        }
        count_source(tally, src, 1);
        t->n = t->total = 1;
        return 0;
    }
    n = (size_t)cJSON_GetArraySize(items);
    if (n == 0) {
        return kg_err(errp, "%s: empty", prefix);
    }
    if (n > INTAKE_MAX_ALERTS) {
        return kg_err(errp, "%s: more than %d alerts in one request", prefix, INTAKE_MAX_ALERTS);
    }
    /* The records' own bytes: noted by the parser, else (a document the strict parser
     * built) found by a scan of the text. */
    if ((nspans = json_doc_spans(doc, items, &spans)) == -1) {
        nspans = json_array_spans(text, len, key, &found);
        spans = found;
    }
    if (nspans != (long)n) { /* a key spelled with escapes: fall back to printed records */
        spans = NULL;
    }
    t->alerts = xcalloc(n, sizeof(*t->alerts));
    t->total = n;
    cJSON_ArrayForEach(it, items)
    {
        const char *raw = spans != NULL ? text + spans[i].off : NULL;
        size_t rawlen = spans != NULL ? spans[i].len : 0;
        int rc;

        if (!cJSON_IsObject(it)) {
            rc = kg_err(&err, "expected an object");
            src = "unknown";
        } else {
            rc = normalize_record(it, raw, rawlen, hint, now, &t->alerts[t->n], &src, &err);
        }
        count_source(tally, src, rc == 0);
        if (rc == 0) {
            t->n++;
        } else if (key == NULL) {
            kg_err(errp, "%s[%zu]%s%s", prefix, i, cJSON_IsObject(it) ? "." : ": ", err);
            free(err);
            free(found);
            tree_free(t);
            return -1;
        } else {
            tree_reject(t, i, src,
                        xasprintf("%s[%zu]%s%s", prefix, i, cJSON_IsObject(it) ? "." : ": ", err));
            free(err);
        }
        err = NULL;
        i++;
    }
    free(found);
    if (t->n == 0) {
        kg_err(errp, "%s: none of the %zu records could be understood; the first: %s", prefix, n,
               t->rej[0].error);
        tree_free(t);
        return -1;
    }
    return 0;
}

/* Normalize a JSON Lines body: each non-empty line (LF or CRLF ended; the last may lack
 * its end) is one record, parsed strictly on its own and normalized with its own bytes
 * as raw. Like an envelope, a line that is not JSON or not understood is left out with
 * its reason (its index is its position among the records, as in the reply's ids; the
 * reason names its line number, from 1) and the others go on; a body of nothing but
 * such lines fails. */
static int
normalize_lines(struct source_tally *tally, const char *text, size_t len, const char *hint,
                int64_t now, struct tree *t, char **errp)
{
    const char *p = text, *end = text + len;
    size_t nlines = 0, cap = 0, line = 0;

    memset(t, 0, sizeof(*t));
    for (const char *q = text; q < end; q++) {
        nlines += *q == '\n';
    }
    if (len > 0 && end[-1] != '\n') {
        nlines++;
    }
    if (nlines > INTAKE_MAX_ALERTS) {
        return kg_err(errp, "lines: more than %d records in one request", INTAKE_MAX_ALERTS);
    }
    for (; p < end; line++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl != NULL ? nl : end;
        size_t n = (size_t)(e - p);
        struct json_doc *doc = NULL;
        const cJSON *obj = NULL;
        const char *src = "unknown";
        char *err = NULL;
        int rc;

        if (n > 0 && p[n - 1] == '\r') {
            n--;
        }
        if (n == 0) {
            p = nl != NULL ? nl + 1 : end;
            continue;
        }
        if (t->n == cap) {
            cap = cap ? cap * 2 : 64;
            t->alerts = xrealloc(t->alerts, cap * sizeof(*t->alerts));
        }
        rc = json_doc_parse(p, n, JSON_MAX_DEPTH, &doc, &err);
        if (rc == 0 && !cJSON_IsObject(obj = json_doc_root(doc))) {
            rc = kg_err(&err, "expected an object");
        }
        if (rc == 0) {
            rc = normalize_record(obj, p, n, hint, now, &t->alerts[t->n], &src, &err);
        }
        json_doc_free(doc);
        count_source(tally, src, rc == 0);
        t->total++;
        if (rc == 0) {
            t->n++;
        } else {
            tree_reject(t, t->total - 1, src, xasprintf("line %zu: %s", line + 1, err));
            free(err);
        }
        p = nl != NULL ? nl + 1 : end;
    }
    if (t->n == 0) {
        if (t->nrej == 0) {
            kg_err(errp, "lines: no record in the body");
        } else {
            kg_err(errp, "lines: none of the %zu records could be understood; the first: %s",
                   t->total, t->rej[0].error);
        }
        tree_free(t);
        return -1;
    }
    return 0;
}

/* The source's normalizer: a JSON document (strictly validated) to alerts. */
static int
intake_normalize(const char *rec, size_t len, const char *hint, int64_t received_ms,
                 struct alert **alerts, size_t *n, char **errp)
{
    struct json_doc *doc = NULL;
    struct tree t;
    int rc;

    if (json_doc_parse(rec, len, JSON_MAX_DEPTH, &doc, errp) == -1) {
        return -1;
    }
    rc = normalize_tree(NULL, rec, len, doc, hint, received_ms, &t, errp);
    json_doc_free(doc);
    if (rc == 0) {
        rejects_free(t.rej, t.nrej); /* this interface has no way to name them */
        *alerts = t.alerts;
        *n = t.n;
    }
    return rc;
}

/* Each record's row made here (store_event_prepare: an event's keys and dedup key, and
 * the observables' JSON that an alert's insert takes too), so that the loop does only
 * the SQL, whichever class the tenant's rule gives it there. */
static void
parse_prepare_rows(struct parse_job *j)
{
    for (size_t i = 0; j->rc == 0 && i < j->tr.n; i++) {
        store_event_prepare(&j->tr.alerts[i]);
    }
}

/* Parse and normalize a job's body (on a parser thread, or on the loop for a small
 * one): j->rc, j->code and j->err say how it went, j->tr holds the alerts and the records
 * left out, j->tally the counts per source. Touches the job only. */
static void
parse_run(void *arg)
{
    struct parse_job *j = arg;
    struct json_doc *doc = NULL;

    if (j->lines) {
        j->rc = normalize_lines(&j->tally, j->body, j->len, j->hint, j->now_ms, &j->tr, &j->err);
        j->code = "bad_alert";
        parse_prepare_rows(j);
        return;
    }
    /* Two steps rather than intake_normalize, so that bad JSON and a bad alert answer
     * with different error codes. */
    if (json_doc_parse(j->body, j->len, JSON_MAX_DEPTH, &doc, &j->err) == -1) {
        j->rc = -1;
        j->code = "bad_json";
        return;
    }
    j->rc = normalize_tree(&j->tally, j->body, j->len, doc, j->hint, j->now_ms, &j->tr, &j->err);
    j->code = "bad_alert";
    json_doc_free(doc);
    parse_prepare_rows(j);
}

static void
parse_job_free(struct parse_job *j)
{
    if (j->rc == 0) {
        tree_free(&j->tr);
    }
    free(j->err);
    free(j->hint);
    free(j);
}

/* Back on the loop: answer a refused body, or hand the alerts to the admit step (the
 * answer comes after the commit). The tenant is found again by its id: it may have gone
 * while its body was with a thread, and its token bucket may have moved. */
static void
parse_finish(struct parse_job *j)
{
    struct intake *in = j->in;
    struct tenant *t;
    struct pending *p;

    if (j->rc == 1 || in->stopping) {
        http_reply_error(j->req, 503, "shutting_down", "the engine is stopping");
        parse_job_free(j);
        return;
    }
    tally_merge(&in->tally, &j->tally);
    if ((t = tenant_find(j->tenant)) == NULL) {
        in->rejected++;
        http_reply_error(j->req, 401, "unauthorized",
                         "the tenant was removed while its request was being read; nothing "
                         "was stored");
        parse_job_free(j);
        return;
    }
    if (j->rc == -1) {
        in->rejected++;
        http_reply_error(j->req, 400, j->code, j->err != NULL ? j->err : "?");
        parse_job_free(j);
        return;
    }
    if (in->rate > 0) {
        for (size_t i = 0; i < in->nbuckets; i++) {
            if (strcmp(in->buckets[i].tenant, t->id) == 0) {
                /* the first alert was taken by rate_check */
                in->buckets[i].tokens -= (double)j->tr.total - 1;
                break;
            }
        }
    }
    p = xcalloc(1, sizeof(*p));
    p->t0_us = j->t0_us;
    p->in = in;
    p->req = j->req;
    snprintf(p->tenant, sizeof(p->tenant), "%s", t->id);
    p->rej = j->tr.rej;
    p->nrej = j->tr.nrej;
    p->total = j->tr.total;
    admit_alerts(t, j->tr.alerts, j->tr.n, answer, p);
    j->rc = 1; /* the tree is taken */
    parse_job_free(j);
}

static void parse_dispatch(struct intake *in);

/* A thread finished a job (or the pool was freed before one ran it: cancelled). */
static void
parse_done(void *arg, int cancelled)
{
    struct parse_job *j = arg;
    struct intake *in = j->in;

    in->inflight--;
    if (cancelled) {
        if (j->rc == 0) {
            tree_free(&j->tr);
        }
        j->rc = 1;
    }
    parse_finish(j);
    parse_dispatch(in);
}

/* Hand queued bodies to the pool, one tenant after the other, while it has fewer than
 * two per thread (one running, one ready to start the moment the first ends). */
static void
parse_dispatch(struct intake *in)
{
    while (!in->stopping && in->queued > 0 && in->inflight < 2 * in->nthreads) {
        struct parse_queue *q = NULL;
        struct parse_job *j;

        for (size_t k = 0; k < in->nqueues; k++) {
            struct parse_queue *c = &in->queues[(in->rr + k) % in->nqueues];

            if (c->head != NULL) {
                q = c;
                /* Not reduced modulo the queues of now: a tenant whose queue is added
                 * later is next, not the one just served again. */
                in->rr = (in->rr + k) % in->nqueues + 1;
                break;
            }
        }
        if (q == NULL) {
            return; /* cannot happen while queued > 0 */
        }
        j = q->head;
        if (work_submit(in->pool, parse_run, parse_done, j) == -1) {
            return; /* the pool's own queue is full: the next completion comes back here */
        }
        q->head = j->next;
        if (q->head == NULL) {
            q->tail = NULL;
        }
        j->next = NULL;
        q->n--;
        q->bytes -= j->len;
        in->queued--;
        in->queued_bytes -= j->len;
        in->inflight++;
        in->parsed_threads++;
    }
}

/* Queue a large body for the parser threads. -1 when its tenant already has
 * intake.parse_queue bytes waiting, or all tenants together four times that (a body
 * alone in an empty queue is always taken): the caller answers 503. */
static int
parse_enqueue(struct intake *in, struct parse_job *j)
{
    struct parse_queue *q = NULL;

    for (size_t i = 0; i < in->nqueues; i++) {
        if (strcmp(in->queues[i].tenant, j->tenant) == 0) {
            q = &in->queues[i];
            break;
        }
    }
    if (q == NULL) {
        in->queues = xrealloc(in->queues, (in->nqueues + 1) * sizeof(*in->queues));
        q = &in->queues[in->nqueues++];
        memset(q, 0, sizeof(*q));
        snprintf(q->tenant, sizeof(q->tenant), "%s", j->tenant);
    }
    if ((q->n > 0 && q->bytes + j->len > in->queue_max) ||
        (in->queued > 0 && in->queued_bytes + j->len > 4 * in->queue_max)) {
        return -1;
    }
    if (q->tail != NULL) {
        q->tail->next = j;
    } else {
        q->head = j;
    }
    q->tail = j;
    q->n++;
    q->bytes += j->len;
    in->queued++;
    in->queued_bytes += j->len;
    parse_dispatch(in);
    return 0;
}

static void
handle_alerts(struct intake *in, struct http_request *req)
{
    const char *token = bearer(req);
    const char *hint;
    struct tenant *t;
    struct parse_job *j;
    int lines;
    int64_t t0_us = util_mono_us();
    struct bucket *bucket;

    if (strcmp(http_request_method(req), "POST") != 0) {
        http_reply_header(req, "Allow", "POST");
        http_reply_error(req, 405, "method_not_allowed", "use POST");
        return;
    }
    if (token == NULL || (t = tenant_for_token(token)) == NULL) {
        in->rejected++;
        http_reply_header(req, "WWW-Authenticate", "Bearer");
        http_reply_error(req, 401, "unauthorized", "missing or unknown bearer token");
        return;
    }
    http_request_set_client(req, t->id);
    if (rate_check(in, req, t, &bucket) == -1) {
        return;
    }
    lines = is_lines_type(http_request_header(req, "Content-Type"));
    if (!lines && !is_json_type(http_request_header(req, "Content-Type"))) {
        in->rejected++;
        http_reply_error(req, 415, "unsupported_media_type",
                         "Content-Type must be application/json (or JSON Lines: "
                         "application/x-ndjson)");
        return;
    }
    if (run_ready_count() >= (size_t)in->max_queued) {
        in->shed++;
        http_reply_header(req, "Retry-After", "1");
        http_reply_error(req, 503, "overloaded", "too many runs waiting; retry shortly");
        return;
    }
    j = xcalloc(1, sizeof(*j));
    j->in = in;
    j->req = req;
    snprintf(j->tenant, sizeof(j->tenant), "%s", t->id);
    hint = http_request_param(req, "source");
    j->hint = hint != NULL ? xstrdup(hint) : NULL;
    j->lines = lines;
    j->body = http_request_body(req, &j->len);
    j->now_ms = util_now_ms();
    j->t0_us = t0_us;
    if (in->pool == NULL || j->len < INTAKE_INLINE_BYTES) {
        in->parsed_loop++;
        parse_run(j);
        parse_finish(j);
        return;
    }
    if (parse_enqueue(in, j) == -1) {
        in->shed++;
        in->parse_shed++;
        parse_job_free(j);
        http_reply_header(req, "Retry-After", "1");
        http_reply_error(req, 503, "overloaded",
                         "too many request bodies waiting to be parsed (intake.parse_queue); "
                         "retry shortly");
    }
}

static void
intake_metrics(struct buf *b, void *arg)
{
    struct intake *in = arg;
    unsigned long long cum = 0;

    metrics_counter(b, "kagari_intake_requests_total", "Intake requests received.", in->requests);
    metrics_counter(b, "kagari_intake_rejected_total", NULL, in->rejected);
    metrics_counter(b, "kagari_intake_shed_total", NULL, in->shed);
    metrics_counter(b, "kagari_intake_throttled_total", NULL, in->throttled);
    (void)!buf_printf(b,
                      "# HELP kagari_intake_parsed_total Alert request bodies parsed and "
                      "normalized, on the loop (small ones) or on a parser thread.\n"
                      "# TYPE kagari_intake_parsed_total counter\n"
                      "kagari_intake_parsed_total{where=\"loop\"} %llu\n"
                      "kagari_intake_parsed_total{where=\"thread\"} %llu\n",
                      in->parsed_loop, in->parsed_threads);
    metrics_counter(b, "kagari_intake_parse_shed_total",
                    "Requests answered 503 because intake.parse_queue was full.", in->parse_shed);
    metrics_gauge(b, "kagari_intake_parse_queued", "Request bodies waiting for a parser thread.",
                  (double)in->queued);
    metrics_gauge(b, "kagari_intake_parse_queued_bytes", NULL, (double)in->queued_bytes);
    metrics_gauge(b, "kagari_intake_parsing", "Request bodies with the parser threads.",
                  (double)in->inflight);
    metrics_counter(b, "kagari_intake_conns_refused_total", NULL, http_server_refused(in->srv));
    metrics_gauge(b, "kagari_intake_connections", NULL, http_server_conns(in->srv));
    (void)!buf_puts(b, "# HELP kagari_intake_records_total Records normalized or rejected, per "
                       "source (a rejected record is left out of its envelope).\n"
                       "# TYPE kagari_intake_records_total counter\n");
    for (size_t i = 0; i <= INTAKE_SOURCES_MAX; i++) {
        const struct source_count *c = &in->tally.v[i];

        if (i >= in->tally.n && (i < INTAKE_SOURCES_MAX || c->name[0] == '\0')) {
            continue; /* unused slots; the last one is "other" once used */
        }
        (void)!buf_printf(b,
                          "kagari_intake_records_total{source=\"%s\",result=\"normalized\"} %llu\n"
                          "kagari_intake_records_total{source=\"%s\",result=\"rejected\"} %llu\n",
                          c->name, c->ok, c->name, c->bad);
    }
    (void)!buf_puts(b, "# HELP kagari_intake_ack_seconds Request received to 202 sent (commit "
                       "and runs of that iteration included).\n"
                       "# TYPE kagari_intake_ack_seconds histogram\n");
    for (size_t i = 0; i < ACK_NB; i++) {
        cum += in->ack_buckets[i];
        (void)!buf_printf(b, "kagari_intake_ack_seconds_bucket{le=\"%g\"} %llu\n", ack_bounds[i],
                          cum);
    }
    (void)!buf_printf(b,
                      "kagari_intake_ack_seconds_bucket{le=\"+Inf\"} %llu\n"
                      "kagari_intake_ack_seconds_sum %.6f\n"
                      "kagari_intake_ack_seconds_count %llu\n",
                      in->ack_count, in->ack_sum, in->ack_count);
}

static void
handle_metrics(struct http_request *req)
{
    struct buf b;

    buf_init(&b, 0);
    metrics_render(&b);
    http_reply(req, 200, "text/plain; version=0.0.4", b.data, b.len);
    buf_free(&b);
}

/* 200 ok; 503 while draining, or degraded while commits fail (nothing can be stored).
 * A tenant database locked by another process leaves it 200 with tenants_locked. */
static void
handle_healthz(struct http_request *req)
{
    const char *body = "{\"status\":\"ok\"}";
    char text[64];
    int status = 200;

    if (loop_stopping()) {
        body = "{\"status\":\"draining\"}";
        status = 503;
    } else if (loop_commits_failing() > 0) {
        body = "{\"status\":\"degraded\",\"reason\":\"commits are failing (disk full or I/O "
               "errors): alerts cannot be stored\"}";
        status = 503;
    } else if (loop_tenants_locked() > 0) {
        /* Still 200: every other tenant is served; the locked one gets 503 per request. */
        snprintf(text, sizeof(text), "{\"status\":\"ok\",\"tenants_locked\":%zu}",
                 loop_tenants_locked());
        body = text;
    }
    if (status == 503) {
        http_reply_header(req, "Retry-After", "5");
    }
    http_reply(req, status, "application/json", body, strlen(body));
}

/* Routes other modules added (intake_add_route). */
struct intake_route {
    const char *prefix;
    void (*fn)(struct http_request *req, void *arg);
    void *arg;
};
#define INTAKE_ROUTES_MAX 16
static struct intake_route extra_routes[INTAKE_ROUTES_MAX];
static size_t nextra_routes;

void
intake_add_route(const char *prefix, void (*fn)(struct http_request *req, void *arg), void *arg)
{
    for (size_t i = 0; i < nextra_routes; i++) {
        if (strcmp(extra_routes[i].prefix, prefix) == 0) {
            extra_routes[i].fn = fn;
            extra_routes[i].arg = arg;
            return;
        }
    }
    if (nextra_routes < INTAKE_ROUTES_MAX) {
        extra_routes[nextra_routes++] = (struct intake_route){ prefix, fn, arg };
    }
}

/* A plug-in's read-only resource (a firewall's block list): GET only, its own
 * credentials, never cached by a proxy. */
static void
handle_plugin(struct http_request *req, const struct plugin_route *route)
{
    struct buf b;
    const char *ctype = "text/plain; charset=utf-8";
    int status;

    if (strcmp(http_request_method(req), "GET") != 0) {
        http_reply_header(req, "Allow", "GET");
        http_reply_error(req, 405, "method_not_allowed", "only GET is served here");
        return;
    }
    buf_init(&b, 16u << 20);
    status =
        route->get(http_request_path(req), http_request_header(req, "Authorization"), &b, &ctype);
    if (status == 401) {
        http_reply_header(req, "WWW-Authenticate", "Basic realm=\"kagari\", charset=\"UTF-8\"");
    }
    http_reply_header(req, "Cache-Control", "no-store");
    http_reply(req, status, ctype, b.data != NULL ? b.data : "", b.len);
    buf_free(&b);
}

static void
handle(struct http_request *req, void *arg)
{
    struct intake *in = arg;
    const char *path = http_request_path(req);
    const struct plugin_route *route;

    for (size_t i = nextra_routes; i > 0; i--) {
        if (strncmp(path, extra_routes[i - 1].prefix, strlen(extra_routes[i - 1].prefix)) == 0) {
            in->requests++;
            extra_routes[i - 1].fn(req, extra_routes[i - 1].arg);
            return;
        }
    }

    in->requests++;
    if (strcmp(path, "/api/v1/alerts") == 0) {
        handle_alerts(in, req);
    } else if (strcmp(path, "/healthz") == 0) {
        handle_healthz(req);
    } else if (strcmp(path, "/metrics") == 0) {
        handle_metrics(req);
    } else if ((route = plugin_route(path)) != NULL) {
        handle_plugin(req, route);
    } else {
        http_reply_error(req, 404, "not_found", "no such endpoint");
    }
}

struct intake *
intake_new(const struct config *cfg, char **errp)
{
    struct intake *in = xcalloc(1, sizeof(*in));
    struct http_config hc;

    memset(&hc, 0, sizeof(hc));
    hc.max_body_bytes = cfg->intake.max_body;
    hc.max_header_bytes = cfg->intake.max_header;
    hc.max_conns = cfg->intake.max_conns;
    hc.max_conns_per_peer = cfg->intake.max_conns_per_peer;
    hc.header_timeout = cfg->intake.header_timeout;
    hc.body_timeout = cfg->intake.body_timeout;
    hc.idle_timeout = cfg->intake.idle_timeout;
    hc.on_reject = on_reject;
    hc.reject_arg = in;
    in->max_queued = cfg->intake.max_queued_runs;
    in->rate = cfg->intake.tenant_rate;
    in->burst = cfg->intake.tenant_burst;
    in->listen = xstrdup(cfg->intake.listen);
    in->queue_max = cfg->intake.parse_queue;
    if (cfg->intake.parse_threads > 0) {
        in->pool =
            work_new(loop_base(), cfg->intake.parse_threads, 2 * cfg->intake.parse_threads, errp);
        if (in->pool == NULL) {
            free(in->listen);
            free(in);
            return NULL;
        }
        in->nthreads = cfg->intake.parse_threads;
    }
    if (cfg->intake.tls_cert != NULL && cfg->intake.tls_key != NULL) {
        in->ssl = tls_server_context(cfg->intake.tls_cert, cfg->intake.tls_key, errp);
        if (in->ssl == NULL) {
            work_free(in->pool);
            free(in->listen);
            free(in);
            return NULL;
        }
        hc.ssl_ctx = in->ssl;
    }
    in->srv = http_server_new(loop_base(), &hc, handle, in);
    {
        struct timeval tv = { 1, 0 };

        in->reject_timer = event_new(loop_base(), -1, EV_PERSIST, reject_timer_cb, in);
        in->acc_ev = event_new(loop_base(), -1, 0, acc_flush, in);
        if (in->reject_timer == NULL || in->acc_ev == NULL) {
            abort(); /* only fails on OOM, like xmalloc */
        }
        event_add(in->reject_timer, &tv);
    }
    if (in->srv == NULL || http_server_listen(in->srv, cfg->intake.listen, errp) == -1) {
        intake_free(in);
        return NULL;
    }
    metrics_add(intake_metrics, in);
    return in;
}

int
intake_port(const struct intake *in)
{
    return http_server_port(in->srv);
}

void
intake_stop_accepting(struct intake *in)
{
    http_server_stop_accepting(in->srv);
}

void
intake_free(struct intake *in)
{
    if (in == NULL) {
        return;
    }
    metrics_remove(intake_metrics, in);
    /* Bodies still being parsed or waiting: answered 503 shutting_down (nothing of them
     * was stored; the admit step is closed by now), before their requests go with the
     * server. work_free lets the running jobs finish. */
    in->stopping = 1;
    work_free(in->pool);
    for (size_t i = 0; i < in->nqueues; i++) {
        while (in->queues[i].head != NULL) {
            struct parse_job *j = in->queues[i].head;

            in->queues[i].head = j->next;
            j->rc = 1;
            parse_finish(j);
        }
    }
    free(in->queues);
    if (in->reject_timer != NULL) {
        /* Report what the open windows suppressed so far. */
        for (size_t i = 0; i < in->nreasons; i++) {
            reject_window_end(&in->reasons[i], in->reasons[i].window_us + INTAKE_REJECT_WINDOW_US);
        }
        event_free(in->reject_timer);
    }
    if (in->acc_ev != NULL) {
        acc_flush(-1, 0, in); /* the last answers' line */
        event_free(in->acc_ev);
    }
    free(in->acc);
    free(in->listen);
    free(in->buckets);
    http_server_free(in->srv);
    if (in->ssl != NULL) {
        SSL_CTX_free(in->ssl);
    }
    free(in);
}

static int
source_start(const struct config *cfg, void **state, char **errp)
{
    *state = intake_new(cfg, errp);
    return *state != NULL ? 0 : -1;
}

static void
source_drain(void *state)
{
    intake_stop_accepting(state);
}

static void
source_stop(void *state)
{
    intake_free(state);
}

static void
source_describe(void *state, struct buf *b)
{
    struct intake *in = state;

    (void)!buf_printf(b, " intake=%s port=%d", in->listen, http_server_port(in->srv));
}

const struct source intake_source = {
    "http",
    "POST /api/v1/alerts with a tenant's bearer token: JSON alerts, arrays, Azure records",
    NULL, /* its settings are the core's intake block */
    source_start,
    source_drain,
    source_stop,
    source_describe,
    intake_normalize,
    NULL, /* reload: its settings apply at the next start */
};
