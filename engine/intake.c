/* intake.c: HTTP alert intake with group commit. */
#include "engine/intake.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>

#include "connectors/call.h"
#include "connectors/limiter.h"
#include "engine/http.h"
#include "engine/json.h"
#include "engine/log.h"
#include "engine/loop.h"
#include "engine/normalize.h"
#include "engine/run.h"
#include "engine/tenant.h"

#define INTAKE_MAX_ALERTS 10000 /* per request */

/* One accepted request waiting for its batch's commit. */
struct pending {
    struct intake *in;
    struct http_request *req;
    struct tenant *t;
    struct alert *alerts;
    size_t n;
    int failed; /* a store error while inserting: answer 500 */
    int dups;
    int64_t t0_us; /* when the request was complete: the ack latency starts here */
    struct pending *next;
};

/* Upper bounds (seconds) of the ack latency histogram buckets: request complete to 202
 * sent, which includes the commit and every run that finished in that iteration. */
static const double ack_bounds[] = { 0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002,
                                     0.003,  0.005,   0.0075, 0.01,    0.025, 0.05,   0.1,
                                     0.25,   0.5,     1.0,    2.5 };
#define ACK_NB (sizeof(ack_bounds) / sizeof(ack_bounds[0]))

struct intake {
    struct http_server *srv;
    SSL_CTX *ssl;
    int max_queued;
    struct pending *head, *tail; /* requests of this iteration, in arrival order */
    unsigned long long requests, accepted, duplicates, rejected, shed, runs;
    unsigned long long ack_count, ack_buckets[ACK_NB + 1];
    double ack_sum;
};

static void
pending_free(struct pending *p)
{
    for (size_t i = 0; i < p->n; i++) {
        alert_free(&p->alerts[i]);
    }
    free(p->alerts);
    free(p);
}

static void
after_commit(void *arg, int ok)
{
    struct pending *p = arg;
    struct buf b;

    if (!ok || p->failed) {
        if (!ok) {
            http_reply_header(p->req, "Retry-After", "1");
        }
        http_reply_error(p->req, ok ? 500 : 503, "store_unavailable",
                         "the alerts could not be stored durably; retry later");
        pending_free(p);
        return;
    }
    buf_init(&b, 0);
    (void)!buf_printf(&b, "{\"accepted\":%zu,\"duplicates\":%d,\"ids\":[", p->n - (size_t)p->dups,
                      p->dups);
    for (size_t i = 0; i < p->n; i++) {
        (void)!buf_printf(&b, "%s%lld", i ? "," : "", (long long)p->alerts[i].id);
    }
    (void)!buf_puts(&b, "]}");
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
    p->in->accepted += p->n - (size_t)p->dups;
    p->in->duplicates += (unsigned long long)p->dups;
    http_reply(p->req, 202, "application/json", b.data, b.len);
    buf_free(&b);
    pending_free(p);
}

/* The iteration phase: insert every waiting request's alerts (one transaction per
 * tenant, opened by loop_write), create their runs, and answer after the commit. */
static int
intake_phase(void *arg)
{
    struct intake *in = arg;
    struct pending *p = in->head;

    in->head = in->tail = NULL;
    while (p != NULL) {
        struct pending *next = p->next;
        char *err = NULL;

        if (loop_write(p->t->db, &err) == -1) {
            p->failed = 1;
        }
        for (size_t i = 0; i < p->n && !p->failed; i++) {
            int dup = 0, nruns = 0;

            if (store_alert_insert(p->t->db, &p->alerts[i], &dup, &err) == -1) {
                p->failed = 1;
                break;
            }
            if (dup) {
                p->dups++;
                continue;
            }
            if (run_route(p->t, &p->alerts[i], &nruns, &err) == -1) {
                p->failed = 1;
                break;
            }
            in->runs += (unsigned long long)nruns;
        }
        if (p->failed) {
            log_err("intake.store_failed tenant=%s error=%s", p->t->id, log_quote(err ? err : "?"));
        }
        free(err);
        loop_after_commit(p->t->db, after_commit, p);
        p = next;
    }
    return 0;
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

/* Normalize the items of a request. The body is one alert object, an array of them, or
 * an Azure diagnostic envelope {"records": [...]}. */
static int
normalize_body(const cJSON *root, const char *default_source, struct pending *p, char **errp)
{
    const cJSON *items = root;
    const cJSON *it;
    const char *prefix = "";
    size_t i = 0;
    int64_t now = util_now_ms();
    char *err = NULL;

    if (cJSON_IsObject(root) && json_get(root, "records") != NULL) {
        items = json_get(root, "records");
        prefix = "records";
        if (!cJSON_IsArray(items)) {
            return kg_err(errp, "records: expected an array");
        }
    } else if (cJSON_IsArray(root)) {
        prefix = "alerts";
    } else if (!cJSON_IsObject(root)) {
        return kg_err(errp, "expected an alert object, an array of alerts or {\"records\":[...]}");
    }
    if (cJSON_IsObject(items)) {
        p->alerts = xcalloc(1, sizeof(struct alert));
        p->n = 1;
        if (normalize_alert(items, default_source, now, &p->alerts[0], &err) == -1) {
            kg_err(errp, "%s", err);
            free(err);
            return -1;
        }
        return 0;
    }
    p->n = (size_t)cJSON_GetArraySize(items);
    if (p->n == 0) {
        return kg_err(errp, "%s: empty", prefix);
    }
    if (p->n > INTAKE_MAX_ALERTS) {
        return kg_err(errp, "%s: more than %d alerts in one request", prefix, INTAKE_MAX_ALERTS);
    }
    p->alerts = xcalloc(p->n, sizeof(struct alert));
    cJSON_ArrayForEach(it, items)
    {
        if (!cJSON_IsObject(it)) {
            return kg_err(errp, "%s[%zu]: expected an object", prefix, i);
        }
        if (normalize_alert(it, default_source, now, &p->alerts[i], &err) == -1) {
            kg_err(errp, "%s[%zu].%s", prefix, i, err);
            free(err);
            return -1;
        }
        i++;
    }
    return 0;
}

static void
handle_alerts(struct intake *in, struct http_request *req)
{
    const char *token = bearer(req);
    struct tenant *t;
    const char *body;
    size_t len = 0;
    cJSON *root = NULL;
    char *err = NULL;
    struct pending *p;
    int64_t t0_us = util_mono_us();

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
    if (!is_json_type(http_request_header(req, "Content-Type"))) {
        in->rejected++;
        http_reply_error(req, 415, "unsupported_media_type", "Content-Type must be application/json");
        return;
    }
    if (run_ready_count() >= (size_t)in->max_queued) {
        in->shed++;
        http_reply_header(req, "Retry-After", "1");
        http_reply_error(req, 503, "overloaded", "too many runs waiting; retry shortly");
        return;
    }
    body = http_request_body(req, &len);
    if (json_parse_strict(body, len, JSON_MAX_DEPTH, &root, &err) == -1) {
        in->rejected++;
        http_reply_error(req, 400, "bad_json", err);
        free(err);
        return;
    }
    p = xcalloc(1, sizeof(*p));
    p->t0_us = t0_us;
    p->in = in;
    p->req = req;
    p->t = t;
    if (normalize_body(root, http_request_param(req, "source"), p, &err) == -1) {
        in->rejected++;
        http_reply_error(req, 400, "bad_alert", err);
        free(err);
        cJSON_Delete(root);
        pending_free(p);
        return;
    }
    cJSON_Delete(root);
    if (in->tail != NULL) {
        in->tail->next = p;
    } else {
        in->head = p;
    }
    in->tail = p;
}

static void
handle_metrics(struct intake *in, struct http_request *req)
{
    struct buf b;
    const struct run_stats *rs = run_stats();
    const struct loop_stats *ls = loop_stats();

    buf_init(&b, 0);
    (void)!buf_printf(&b,
                      "# HELP kagari_intake_requests_total Intake requests received.\n"
                      "# TYPE kagari_intake_requests_total counter\n"
                      "kagari_intake_requests_total %llu\n"
                      "# TYPE kagari_alerts_accepted_total counter\n"
                      "kagari_alerts_accepted_total %llu\n"
                      "# TYPE kagari_alerts_duplicate_total counter\n"
                      "kagari_alerts_duplicate_total %llu\n"
                      "# TYPE kagari_intake_rejected_total counter\n"
                      "kagari_intake_rejected_total %llu\n"
                      "# TYPE kagari_intake_shed_total counter\n"
                      "kagari_intake_shed_total %llu\n"
                      "# TYPE kagari_runs_created_total counter\n"
                      "kagari_runs_created_total %llu\n"
                      "# TYPE kagari_runs_started_total counter\n"
                      "kagari_runs_started_total %llu\n"
                      "# TYPE kagari_runs_finished_total counter\n"
                      "kagari_runs_finished_total{state=\"done\"} %llu\n"
                      "kagari_runs_finished_total{state=\"failed\"} %llu\n"
                      "# TYPE kagari_runs_replayed_total counter\n"
                      "kagari_runs_replayed_total %llu\n"
                      "# TYPE kagari_runs_diverged_total counter\n"
                      "kagari_runs_diverged_total %llu\n"
                      "# TYPE kagari_runs_ready gauge\n"
                      "kagari_runs_ready %zu\n"
                      "# TYPE kagari_runs_active gauge\n"
                      "kagari_runs_active %zu\n"
                      "# TYPE kagari_commits_total counter\n"
                      "kagari_commits_total %llu\n"
                      "# TYPE kagari_commit_failures_total counter\n"
                      "kagari_commit_failures_total %llu\n"
                      "# TYPE kagari_commit_seconds_total counter\n"
                      "kagari_commit_seconds_total %.6f\n"
                      "# TYPE kagari_intake_connections gauge\n"
                      "kagari_intake_connections %d\n",
                      in->requests, in->accepted, in->duplicates, in->rejected, in->shed, in->runs,
                      rs->started, rs->done, rs->failed, rs->replayed, rs->diverged,
                      run_ready_count(), run_active_count(), ls->commits, ls->commit_failures,
                      (double)ls->commit_us_total / 1e6, http_server_conns(in->srv));
    {
        const struct call_stats *cs = call_stats();

        (void)!buf_printf(&b,
                          "# TYPE kagari_connector_calls_total counter\n"
                          "kagari_connector_calls_total{result=\"succeeded\"} %llu\n"
                          "kagari_connector_calls_total{result=\"failed\"} %llu\n"
                          "kagari_connector_calls_total{result=\"replayed\"} %llu\n"
                          "kagari_connector_calls_total{result=\"dry_run\"} %llu\n"
                          "kagari_connector_calls_total{result=\"reconciled\"} %llu\n"
                          "# TYPE kagari_connector_retries_total counter\n"
                          "kagari_connector_retries_total %llu\n"
                          "# TYPE kagari_connector_calls_in_flight gauge\n"
                          "kagari_connector_calls_in_flight %llu\n"
                          "# TYPE kagari_connector_calls_rate_limited gauge\n"
                          "kagari_connector_calls_rate_limited %zu\n",
                          cs->succeeded, cs->failed, cs->replayed, cs->dry_run, cs->reconciled,
                          cs->retried, cs->in_flight, limiter_waiting(NULL));
    }
    (void)!buf_puts(&b, "# HELP kagari_intake_ack_seconds Request received to 202 sent (commit "
                        "and runs of that iteration included).\n"
                        "# TYPE kagari_intake_ack_seconds histogram\n");
    {
        unsigned long long cum = 0;

        for (size_t i = 0; i < ACK_NB; i++) {
            cum += in->ack_buckets[i];
            (void)!buf_printf(&b, "kagari_intake_ack_seconds_bucket{le=\"%g\"} %llu\n",
                              ack_bounds[i], cum);
        }
        (void)!buf_printf(&b,
                          "kagari_intake_ack_seconds_bucket{le=\"+Inf\"} %llu\n"
                          "kagari_intake_ack_seconds_sum %.6f\n"
                          "kagari_intake_ack_seconds_count %llu\n",
                          in->ack_count, in->ack_sum, in->ack_count);
    }
    {
        /* Summed: the intake port is reachable by every sender, so no tenant names. */
        size_t mem = 0;
        int n = 0;

        for (struct tenant *t = tenants_first(); t != NULL; t = t->next) {
            mem += sandbox_memory(t->sb);
            n++;
        }
        (void)!buf_printf(&b,
                          "# TYPE kagari_lua_memory_bytes gauge\n"
                          "kagari_lua_memory_bytes %zu\n"
                          "# TYPE kagari_tenants gauge\n"
                          "kagari_tenants %d\n",
                          mem, n);
    }
    http_reply(req, 200, "text/plain; version=0.0.4", b.data, b.len);
    buf_free(&b);
}

static void
handle(struct http_request *req, void *arg)
{
    struct intake *in = arg;
    const char *path = http_request_path(req);

    in->requests++;
    if (strcmp(path, "/api/v1/alerts") == 0) {
        handle_alerts(in, req);
    } else if (strcmp(path, "/healthz") == 0) {
        const char *ok = loop_stopping() ? "{\"status\":\"draining\"}" : "{\"status\":\"ok\"}";

        http_reply(req, loop_stopping() ? 503 : 200, "application/json", ok, strlen(ok));
    } else if (strcmp(path, "/metrics") == 0) {
        handle_metrics(in, req);
    } else {
        http_reply_error(req, 404, "not_found", "no such endpoint");
    }
}

static SSL_CTX *
tls_context(const struct config *cfg, char **errp)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL) {
        kg_err(errp, "TLS: cannot create a context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->intake.tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, cfg->intake.tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char ebuf[256];

        ERR_error_string_n(ERR_get_error(), ebuf, sizeof(ebuf));
        kg_err(errp, "TLS: %s / %s: %s", cfg->intake.tls_cert, cfg->intake.tls_key, ebuf);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
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
    hc.header_timeout = cfg->intake.header_timeout;
    hc.body_timeout = cfg->intake.body_timeout;
    hc.idle_timeout = cfg->intake.idle_timeout;
    in->max_queued = cfg->intake.max_queued_runs;
    if (cfg->intake.tls_cert != NULL && cfg->intake.tls_key != NULL) {
        in->ssl = tls_context(cfg, errp);
        if (in->ssl == NULL) {
            free(in);
            return NULL;
        }
        hc.ssl_ctx = in->ssl;
    }
    in->srv = http_server_new(loop_base(), &hc, handle, in);
    if (in->srv == NULL || http_server_listen(in->srv, cfg->intake.listen, errp) == -1) {
        intake_free(in);
        return NULL;
    }
    loop_add_phase(intake_phase, in);
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
    while (in->head != NULL) {
        struct pending *p = in->head;

        in->head = p->next;
        http_reply_error(p->req, 503, "shutting_down", "the engine is stopping");
        pending_free(p);
    }
    http_server_free(in->srv);
    if (in->ssl != NULL) {
        SSL_CTX_free(in->ssl);
    }
    free(in);
}
