/* poll_graph.c: the Graph poller. For every tenant whose Microsoft block asks for it
 * (tenants.<id>.microsoft.poll), each stream (security alerts_v2 and incidents, Identity
 * Protection risk detections, sign-in logs) is read by its last-update time from a
 * watermark minus an overlap, page by page following @odata.nextLink, through the call
 * core (the tenant's rate limiter, the endpoint's circuit breaker, OAuth, retries that
 * honour Retry-After): nothing here blocks the loop, and each tenant's streams wait only
 * for their own answers. Each item is normalized on its own (a bad one is rejected
 * alone, with its reason logged and counted) and admitted with admit_updates, so an
 * alert already stored is updated rather than duplicated. The cursor (watermark, the
 * greatest time seen in the pass so far, the next page's link) is written only after the
 * commit of the page's items: a kill -9 makes the poller read a page again (deduplicated),
 * never skip one. Rules: docs/sources.md "Graph polling". */
#include "connectors/poll_graph.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "connectors/call.h"
#include "connectors/microsoft.h"

#define POLL_RETRY_MAX_S 900.0    /* the longest wait after repeated failures */
#define POLL_ERROR_MAX 300        /* bytes of an error kept for the status */
#define POLL_SKEW_MS 300000       /* an item time further ahead of our clock is taken as now */
#define POLL_PASS_PAGES_MAX 10000 /* pages of one pass: a service that links on and on */
#define POLL_NEXT_MAX 8192        /* bytes of a next link (Graph's are well under 2 KiB) */

struct stream_def {
    const char *name;       /* the stream, e.g. "alerts"; cursor "graph.<name>" */
    const char *path;       /* the Graph list */
    const char *time_field; /* the time it is filtered and ordered by */
    const char *limiter;    /* the bucket of the published limit (connectors/microsoft.c) */
    size_t conf_off;        /* its interval in struct microsoft_poll */
    int max_top;            /* the list's largest page */
};

static const struct stream_def stream_defs[] = {
    { "alerts", "/v1.0/security/alerts_v2", "lastUpdateDateTime", "graph.security",
      offsetof(struct microsoft_poll, alerts), 2000 },
    { "incidents", "/v1.0/security/incidents", "lastUpdateDateTime", "graph.security",
      offsetof(struct microsoft_poll, incidents), 50 },
    { "risk_detections", "/v1.0/identityProtection/riskDetections", "lastUpdatedDateTime", "idp",
      offsetof(struct microsoft_poll, risk_detections), 500 },
    { "signins", "/v1.0/auditLogs/signIns", "createdDateTime", "graph.signins",
      offsetof(struct microsoft_poll, signins), 1000 },
};
#define NSTREAM_DEFS (sizeof(stream_defs) / sizeof(stream_defs[0]))

/* What the poller has read of one stream of one tenant. */
struct stream {
    struct poller *p;
    char tenant[64];
    const struct stream_def *def;
    char key[64]; /* the cursor's name: "graph.alerts" */
    double interval, overlap, backfill;
    int top;
    struct event *timer;
    struct call *call; /* the page request in flight, or NULL */
    int busy;          /* a page is being fetched, admitted or its cursor written */
    int loaded;        /* the cursor was read from the store */
    int enabled;       /* the configuration polls it; 0: it stops after its current pass */
    int64_t sched_ms;  /* when its timer was last set (a reload reschedules from there) */

    /* The cursor as committed. */
    int64_t watermark; /* ms: items updated before (watermark - overlap) were all read */
    int64_t pass_max;  /* the greatest item time seen so far in the pass */
    char *next;        /* the next page of the pass (a path on the Graph base), or NULL */
    unsigned long long rejected_total;

    /* The page being admitted. */
    int pending;     /* admit batches not answered yet */
    int page_failed; /* one of them was not stored */
    int64_t page_max;
    char *page_next;
    size_t page_new, page_updated, page_rejected;
    char *last_reject;

    int64_t pass_started_ms; /* when the pass in progress began */
    int pass_pages;          /* pages read by this pass since the start (or a restart) */
    int64_t last_pass_ms;    /* when the last complete pass began (0: none yet) */
    int64_t started_ms;      /* when the poller started */
    int failures;            /* in a row */
    struct stream *snext;
};

struct poller {
    struct stream **streams; /* every stream polled since the start, enabled or not */
    size_t nstreams;
    int draining;
};

/* Summed over tenants, per stream (the metrics endpoint names no tenant). */
static struct {
    unsigned long long requests, pages, passes, items_new, items_updated, items_same, rejected,
        errors;
} stats[NSTREAM_DEFS];
static struct poller *the_poller;

static void stream_fetch(struct stream *s);
static void stream_schedule(struct stream *s, double secs);

static size_t
def_index(const struct stream_def *d)
{
    return (size_t)(d - stream_defs);
}

/* ms since the epoch as an OData DateTimeOffset literal, to the second
 * ("2026-12-05T01:02:03Z"). */
static void
fmt_odata_time(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&secs, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Whether text (a next link's path and query, as followed) is the stream's own list:
 * its path exactly (Graph paths are case-insensitive), then nothing or a query, every
 * byte a visible ASCII character other than a backslash or a fragment's '#'. NULL when
 * it is, else why not. */
static const char *
next_rest_invalid(const struct stream_def *d, const char *rest)
{
    size_t pl = strlen(d->path);

    for (const char *q = rest; *q != '\0'; q++) {
        unsigned char ch = (unsigned char)*q;

        if (ch <= ' ' || ch >= 0x7f || ch == '\\' || ch == '#') {
            return "a space, control, non-ASCII, backslash or '#' character";
        }
    }
    if (strncasecmp(rest, d->path, pl) != 0 || (rest[pl] != '?' && rest[pl] != '\0')) {
        return "a path other than the stream's list";
    }
    return NULL;
}

/* ---- the cursor ---- */

static char *
cursor_text(int64_t watermark, int64_t pass_max, const char *next, unsigned long long rejected,
            const char *last_reject)
{
    cJSON *o = cJSON_CreateObject();
    char tb[32];
    char *text;

    if (watermark > 0) {
        util_fmt_time(watermark, tb);
        cJSON_AddStringToObject(o, "watermark", tb);
    }
    if (pass_max > 0) {
        util_fmt_time(pass_max, tb);
        cJSON_AddStringToObject(o, "pass_max", tb);
    }
    if (next != NULL) {
        cJSON_AddStringToObject(o, "next", next);
    }
    cJSON_AddNumberToObject(o, "rejected", (double)rejected);
    if (last_reject != NULL) {
        cJSON_AddStringToObject(o, "last_reject", last_reject);
    }
    text = json_print(o);
    cJSON_Delete(o);
    return text;
}

/* Read the stream's cursor from the store (once). 0, or -1 when the store cannot say. */
static int
cursor_load(struct stream *s, struct tenant *t)
{
    char *text = NULL, *err = NULL;
    cJSON *o = NULL;
    const char *v;

    if (s->loaded) {
        return 0;
    }
    if (poll_cursor_get(t, s->key, &text, &err) == -1) {
        log_warn("poll.cursor_unreadable tenant=%s stream=%s error=%s", s->tenant, s->key,
                 log_quote(err ? err : "?"));
        free(err);
        return -1;
    }
    s->loaded = 1;
    if (text == NULL) {
        return 0;
    }
    if (json_parse_strict(text, strlen(text), 8, &o, NULL) == -1 || !cJSON_IsObject(o)) {
        /* Not ours any more (edited by hand): start again from the backfill. */
        log_warn("poll.cursor_invalid tenant=%s stream=%s", s->tenant, s->key);
        cJSON_Delete(o);
        free(text);
        return 0;
    }
    if ((v = json_get_string(o, "watermark")) != NULL && util_parse_time(v, &s->watermark) == -1) {
        s->watermark = 0;
    }
    if ((v = json_get_string(o, "pass_max")) != NULL && util_parse_time(v, &s->pass_max) == -1) {
        s->pass_max = 0;
    }
    if ((v = json_get_string(o, "next")) != NULL) {
        /* Checked again: a cursor edited by hand must not send the token elsewhere. */
        if (strlen(v) <= POLL_NEXT_MAX && next_rest_invalid(s->def, v) == NULL) {
            s->next = xstrdup(v);
        } else {
            log_warn("poll.cursor_next_refused tenant=%s stream=%s", s->tenant, s->key);
        }
    }
    {
        const cJSON *r = json_get(o, "rejected");

        s->rejected_total =
            cJSON_IsNumber(r) && r->valuedouble > 0 ? (unsigned long long)r->valuedouble : 0;
    }
    if ((v = json_get_string(o, "last_reject")) != NULL) {
        s->last_reject = xstrdup(v);
    }
    cJSON_Delete(o);
    free(text);
    return 0;
}

/* ---- one page ---- */

/* The wait before the stream's next pass: its interval, doubled per failure in a row up
 * to POLL_RETRY_MAX_S (never below the interval). */
static double
stream_delay(const struct stream *s)
{
    double delay = s->interval;

    for (int i = 1; i < s->failures && delay < POLL_RETRY_MAX_S; i++) {
        delay *= 2;
    }
    if (delay > POLL_RETRY_MAX_S && s->interval < POLL_RETRY_MAX_S) {
        delay = POLL_RETRY_MAX_S;
    }
    return delay;
}

static void
stream_failed(struct stream *s, const char *what, const char *why)
{
    double delay;

    stats[def_index(s->def)].errors++;
    s->failures++;
    delay = stream_delay(s);
    log_warn("poll.failed tenant=%s stream=%s step=%s failures=%d retry_s=%.0f error=%s", s->tenant,
             s->key, what, s->failures, delay, log_quote(why ? why : "?"));
    s->busy = 0;
    stream_schedule(s, delay);
}

static void
page_reset(struct stream *s)
{
    free(s->page_next);
    s->page_next = NULL;
    s->page_max = 0;
    s->pending = 0;
    s->page_failed = 0;
    s->page_new = s->page_updated = s->page_rejected = 0;
}

static void
on_cursor_committed(void *arg, int ok)
{
    struct stream *s = arg;
    int64_t pass_max = s->pass_max > s->page_max ? s->pass_max : s->page_max;
    size_t i = def_index(s->def);

    if (!ok) {
        page_reset(s);
        stream_failed(s, "cursor", "the commit of the cursor failed");
        return;
    }
    stats[i].pages++;
    log_info("poll.page tenant=%s stream=%s new=%zu updated=%zu rejected=%zu more=%d", s->tenant,
             s->key, s->page_new, s->page_updated, s->page_rejected, s->page_next != NULL);
    free(s->next);
    s->next = s->page_next;
    s->page_next = NULL;
    if (s->next != NULL && ++s->pass_pages >= POLL_PASS_PAGES_MAX) {
        /* Never-ending links (a service fault): start the pass again later rather than
         * follow them for ever or move the watermark past what was not read. */
        free(s->next);
        s->next = NULL;
        s->pass_pages = 0;
        page_reset(s);
        stream_failed(s, "fetch", "a pass of more than 10,000 pages: started again");
        return;
    }
    if (s->next != NULL) {
        s->pass_max = pass_max;
        page_reset(s);
        if (the_poller->draining) {
            s->busy = 0;
            return;
        }
        stream_fetch(s); /* the pass goes on */
        return;
    }
    if (pass_max > s->watermark) {
        s->watermark = pass_max;
    }
    s->pass_max = 0;
    page_reset(s);
    stats[i].passes++;
    s->failures = 0;
    s->last_pass_ms = s->pass_started_ms;
    s->busy = 0;
    stream_schedule(s, s->interval);
}

/* Every batch of the page is stored: write the cursor that covers it. */
static void
page_stored(struct stream *s)
{
    struct tenant *t = tenant_find(s->tenant);
    int64_t pass_max = s->pass_max > s->page_max ? s->pass_max : s->page_max;
    int64_t watermark = s->watermark;
    char *text, *err = NULL;

    if (s->page_failed || t == NULL) {
        page_reset(s);
        stream_failed(s, "admit", "the page's items could not be stored");
        return;
    }
    if (s->page_next == NULL) { /* the pass ends with this page */
        watermark = pass_max > watermark ? pass_max : watermark;
        pass_max = 0;
    }
    text = cursor_text(watermark, pass_max, s->page_next, s->rejected_total, s->last_reject);
    if (poll_cursor_put(t, s->key, text, on_cursor_committed, s, &err) == -1) {
        free(text);
        page_reset(s);
        stream_failed(s, "cursor", err);
        free(err);
        return;
    }
    free(text);
}

static void
on_admitted(void *arg, const struct admit_result *res)
{
    struct stream *s = arg;
    size_t i = def_index(s->def);

    if (res->status != ADMIT_OK) {
        s->page_failed = 1;
    } else {
        s->page_new += res->accepted;
        s->page_updated += res->updated;
        stats[i].items_new += res->accepted;
        stats[i].items_updated += res->updated;
        stats[i].items_same += res->duplicates - res->updated;
    }
    if (--s->pending > 0) {
        return;
    }
    if (res->status == ADMIT_SHUTTING_DOWN) {
        page_reset(s);
        s->busy = 0;
        return;
    }
    page_stored(s);
}

/* The link to the next page as a path on the tenant's Graph base: the bearer token goes
 * with it, so it must name the same list on the same service: the base URL as configured
 * (scheme and host compared without regard to case; the same port and path prefix, so no
 * userinfo '@', other port or percent-encoded host passes), then the stream's own path
 * and a query, at most POLL_NEXT_MAX bytes. Only the part after the base is kept: the
 * request goes to the configured base, never to a host the answer names. 0 with *path
 * (malloc'd, NULL when there is none), or -1 with *why (static) when it is refused. */
static int
next_path(struct stream *s, struct tenant *t, const cJSON *page, char **path, const char **why)
{
    const cJSON *it = json_get(page, "@odata.nextLink");
    const struct microsoft_conf *ms = tenant_conf(t, &microsoft_section);
    const char *link = NULL;
    size_t bl = 0;

    *path = NULL;
    *why = NULL;
    if (it == NULL || cJSON_IsNull(it)) {
        return 0;
    }
    if (!cJSON_IsString(it)) {
        *why = "not a string";
    } else if (strlen(link = it->valuestring) > POLL_NEXT_MAX) {
        *why = "longer than 8192 bytes";
    } else if (ms == NULL || strncasecmp(link, ms->graph, bl = strlen(ms->graph)) != 0 ||
               link[bl] != '/') {
        *why = "another scheme, host, port or path prefix than the tenant's Graph base URL";
    } else {
        *why = next_rest_invalid(s->def, link + bl);
    }
    if (*why != NULL) {
        char *shown = cJSON_IsString(it) ? util_cut_text(it->valuestring, 200) : NULL;

        log_warn("poll.bad_next_link tenant=%s stream=%s reason=%s link=%s", s->tenant, s->key,
                 log_quote(*why), log_quote(shown ? shown : "?"));
        free(shown);
        return -1;
    }
    *path = xstrdup(link + bl);
    return 0;
}

/* One page's items: each normalized alone; alerts admitted (updates included), events
 * (sign-ins, by the tenant's rule) stored as events. */
static void
page_admit(struct stream *s, struct tenant *t, const cJSON *items)
{
    size_t n = (size_t)cJSON_GetArraySize(items), na = 0, ne = 0;
    struct alert *alerts = xcalloc(n ? n : 1, sizeof(*alerts));
    struct alert *events = xcalloc(n ? n : 1, sizeof(*events));
    int64_t now = util_now_ms();
    const cJSON *it;

    cJSON_ArrayForEach(it, items)
    {
        char *text = cJSON_PrintUnformatted(it), *err = NULL;
        struct alert a;
        const char *tv = cJSON_IsObject(it) ? json_get_string(it, s->def->time_field) : NULL;
        int64_t tms;

        if (text == NULL) {
            continue;
        }
        if (poll_normalize(text, strlen(text), NULL, now, &a, &err) == -1) {
            const char *id = cJSON_IsObject(it) ? json_get_string(it, "id") : NULL;
            char *why = util_cut_text(err ? err : "?", POLL_ERROR_MAX);

            s->page_rejected++;
            s->rejected_total++;
            stats[def_index(s->def)].rejected++;
            log_warn("poll.rejected tenant=%s stream=%s id=%s reason=%s", s->tenant, s->key,
                     log_quote(id ? id : "?"), log_quote(why));
            free(s->last_reject);
            s->last_reject = xasprintf("%s: %s", id ? id : "?", why);
            free(why);
            free(err);
            free(text);
            continue;
        }
        free(text);
        /* The item is read: its time counts toward the watermark, but never past our
         * own clock (plus a little skew): an item dated in the future must not make
         * the poller skip what the service updates until then. */
        if (tv != NULL && util_parse_time(tv, &tms) == 0) {
            if (tms > now + POLL_SKEW_MS) {
                log_warn("poll.future_time tenant=%s stream=%s %s=%s", s->tenant, s->key,
                         s->def->time_field, log_quote(tv));
                tms = now;
            }
            if (tms > s->page_max) {
                s->page_max = tms;
            }
        }
        if (admit_is_alert(t, &a, a.cls != ALERT_CLASS_EVENT)) {
            alerts[na++] = a;
        } else {
            events[ne++] = a;
        }
    }
    s->pending = (na > 0) + (ne > 0);
    if (na > 0) {
        admit_updates(t, alerts, na, on_admitted, s);
    } else {
        free(alerts);
    }
    if (ne > 0) {
        admit_events(t, events, ne, on_admitted, s);
    } else {
        free(events);
    }
    if (s->pending == 0) {
        page_stored(s);
    }
}

static void
on_page(void *arg, int ok, const char *result)
{
    struct stream *s = arg;
    struct tenant *t = tenant_find(s->tenant);
    cJSON *page = NULL;
    const cJSON *items;
    const char *why;

    s->call = NULL;
    if (!ok || t == NULL) {
        if (s->next != NULL && result != NULL && strstr(result, "HTTP 400") != NULL) {
            /* A next link the service no longer takes (an expired $skiptoken): the pass
             * starts again from the watermark; what it read is already stored. */
            log_warn("poll.pass_restarted tenant=%s stream=%s error=%s", s->tenant, s->key,
                     log_quote(result));
            free(s->next);
            s->next = NULL;
        }
        stream_failed(s, "fetch", result);
        return;
    }
    if (json_parse_strict(result, strlen(result), JSON_MAX_DEPTH, &page, NULL) == -1 ||
        !cJSON_IsArray(items = json_get(page, "value"))) {
        cJSON_Delete(page);
        stream_failed(s, "fetch", "the answer is not a list page");
        return;
    }
    page_reset(s);
    if (next_path(s, t, page, &s->page_next, &why) == -1) {
        char *msg = xasprintf("the next page link is refused (%s): the page is not taken", why);

        cJSON_Delete(page);
        stream_failed(s, "fetch", msg);
        free(msg);
        return;
    }
    page_admit(s, t, items);
    cJSON_Delete(page);
}

/* A page's answer: the body as it is (parsed by on_page), or the error. */
static int
map_page(struct call *c, const struct httpc_response *resp, char **result)
{
    if (resp->status >= 200 && resp->status < 300) {
        *result = xstrndup(resp->body, resp->body_len);
        return 1;
    }
    *result = call_error_text(c, resp);
    return 0;
}

/* Ask for the stream's next page: the pass's next link, or the first page of a new pass
 * from the watermark minus the overlap (the backfill on the first pass). */
static void
stream_fetch(struct stream *s)
{
    struct tenant *t = tenant_find(s->tenant);
    struct call_spec spec;
    char *path = NULL, *err = NULL;

    s->busy = 1;
    if (t == NULL || cursor_load(s, t) == -1) {
        stream_failed(s, "cursor", "the tenant's store cannot be read");
        return;
    }
    if (s->next != NULL) {
        path = xstrdup(s->next);
    } else {
        int64_t now = util_now_ms();
        int64_t since = s->watermark > 0 ? s->watermark - (int64_t)(s->overlap * 1000)
                                         : now - (int64_t)(s->backfill * 1000);
        char tb[32], *filter, *esc;

        fmt_odata_time(since, tb);
        filter = xasprintf("%s ge %s", s->def->time_field, tb);
        esc = call_escape(filter);
        path = xasprintf("%s?$filter=%s&$top=%d", s->def->path, esc, s->top);
        free(esc);
        free(filter);
        s->pass_started_ms = now;
        s->pass_max = 0;
        s->pass_pages = 0;
    }
    memset(&spec, 0, sizeof(spec));
    spec.kind = s->key;
    spec.api = &microsoft_graph;
    spec.limiter = s->def->limiter;
    spec.prio = LIMITER_ENRICH; /* containment calls of runs go first */
    spec.idempotent = 1;
    spec.method = "GET";
    spec.path = path;
    spec.map = map_page;
    stats[def_index(s->def)].requests++;
    s->call = call_request(t, &spec, on_page, s, &err);
    free(path);
    if (s->call == NULL) {
        stream_failed(s, "fetch", err);
        free(err);
    }
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct stream *s = arg;

    (void)fd;
    (void)what;
    if (s->busy || !s->enabled || the_poller->draining) {
        return;
    }
    stream_fetch(s);
}

/* The stream's next pass in secs. A stream the configuration no longer polls stops here:
 * its pass is over (complete or failed; a failed pass keeps its next link in the cursor,
 * and goes on from it if a later reload polls the stream again). */
static void
stream_schedule(struct stream *s, double secs)
{
    struct timeval tv;

    if (the_poller->draining) {
        return;
    }
    if (!s->enabled) {
        log_info("poll.stream_stopped tenant=%s stream=%s", s->tenant, s->key);
        return;
    }
    s->sched_ms = util_now_ms();
    tv.tv_sec = (time_t)secs;
    tv.tv_usec = (suseconds_t)((secs - (double)tv.tv_sec) * 1e6);
    evtimer_add(s->timer, &tv);
}

/* ---- the source ---- */

static void
poll_metrics(struct buf *b, void *arg)
{
    static const char *const results[] = { "new", "updated", "unchanged", "rejected" };
    int64_t now = util_now_ms();

    (void)arg;
    for (size_t i = 0; i < NSTREAM_DEFS; i++) {
        metrics_labelled(b, "kagari_poll_requests_total", "stream", stream_defs[i].name,
                         stats[i].requests, i == 0);
    }
    for (size_t i = 0; i < NSTREAM_DEFS; i++) {
        metrics_labelled(b, "kagari_poll_pages_total", "stream", stream_defs[i].name,
                         stats[i].pages, i == 0);
    }
    for (size_t i = 0; i < NSTREAM_DEFS; i++) {
        metrics_labelled(b, "kagari_poll_passes_total", "stream", stream_defs[i].name,
                         stats[i].passes, i == 0);
    }
    for (size_t i = 0; i < NSTREAM_DEFS; i++) {
        metrics_labelled(b, "kagari_poll_errors_total", "stream", stream_defs[i].name,
                         stats[i].errors, i == 0);
    }
    (void)!buf_puts(b, "# TYPE kagari_poll_items_total counter\n");
    for (size_t i = 0; i < NSTREAM_DEFS; i++) {
        unsigned long long v[4] = { stats[i].items_new, stats[i].items_updated, stats[i].items_same,
                                    stats[i].rejected };

        for (size_t k = 0; k < 4; k++) {
            (void)!buf_printf(b, "kagari_poll_items_total{stream=\"%s\",result=\"%s\"} %llu\n",
                              stream_defs[i].name, results[k], v[k]);
        }
    }
    /* How stale the poller's view may be: since the start of the last complete pass, the
     * worst tenant per stream (since the poller started when none completed yet). */
    (void)!buf_puts(b, "# HELP kagari_poll_lag_seconds Seconds since the start of the last "
                       "complete poll of a stream (its worst tenant).\n"
                       "# TYPE kagari_poll_lag_seconds gauge\n");
    for (size_t i = 0; i < NSTREAM_DEFS; i++) {
        double lag = -1;

        for (size_t k = 0; the_poller != NULL && k < the_poller->nstreams; k++) {
            const struct stream *s = the_poller->streams[k];
            double l;

            if (s->def != &stream_defs[i] || !s->enabled) {
                continue;
            }
            l = (double)(now - (s->last_pass_ms > 0 ? s->last_pass_ms : s->started_ms)) / 1000.0;
            lag = l > lag ? l : lag;
        }
        if (lag >= 0) {
            (void)!buf_printf(b, "kagari_poll_lag_seconds{stream=\"%s\"} %.3f\n",
                              stream_defs[i].name, lag);
        }
    }
}

/* The poll settings of tenant t in cfg (NULL: the configuration the tenant was opened
 * with), or NULL when it has no Microsoft block there. */
static const struct microsoft_conf *
ms_settings(const struct config *cfg, const struct tenant *t)
{
    const struct config_tenant *ct;

    if (cfg == NULL) {
        return tenant_conf(t, &microsoft_section);
    }
    ct = config_tenant(cfg, tenant_id(t));
    return ct != NULL ? config_tenant_block(ct, &microsoft_section) : NULL;
}

static double
interval_of(const struct microsoft_conf *ms, const struct stream_def *d)
{
    return ms != NULL ? *(const double *)((const char *)&ms->poll + d->conf_off) : 0;
}

static struct stream *
stream_find(const struct poller *p, const struct tenant *t, const struct stream_def *d)
{
    for (size_t k = 0; k < p->nstreams; k++) {
        if (p->streams[k]->def == d && strcmp(p->streams[k]->tenant, tenant_id(t)) == 0) {
            return p->streams[k];
        }
    }
    return NULL;
}

static struct stream *
stream_add(struct poller *p, const struct tenant *t, const struct stream_def *d)
{
    struct stream *s = xcalloc(1, sizeof(*s));

    s->p = p;
    snprintf(s->tenant, sizeof(s->tenant), "%s", tenant_id(t));
    s->def = d;
    snprintf(s->key, sizeof(s->key), "graph.%s", d->name);
    s->timer = evtimer_new(loop_base(), on_timer, s);
    s->started_ms = util_now_ms();
    p->streams = xrealloc(p->streams, (p->nstreams + 1) * sizeof(*p->streams));
    p->streams[p->nstreams++] = s;
    return s;
}

/* Apply the settings ms (NULL: none, not polled) to s, at the start or a reload. The
 * cursor and the pass in progress stay as they are: one struct stream per tenant and
 * stream for the life of the daemon, whose busy flag keeps a second pass from starting
 * while one runs. A new interval counts from when the timer was set; overlap, backfill
 * and page size apply from the next pass; a stream no longer polled stops after its
 * current pass; one polled again starts at once (or when its pass in progress ends). */
static void
stream_apply(struct stream *s, const struct microsoft_conf *ms)
{
    double iv = interval_of(ms, s->def);

    if (iv <= 0) {
        if (s->enabled) {
            s->enabled = 0;
            if (s->busy) {
                log_info("poll.stream_stopping tenant=%s stream=%s (after its current pass)",
                         s->tenant, s->key);
            } else {
                evtimer_del(s->timer);
                log_info("poll.stream_stopped tenant=%s stream=%s", s->tenant, s->key);
            }
        }
        return;
    }
    s->overlap = ms->poll.overlap;
    s->backfill = ms->poll.backfill;
    s->top = ms->poll.page_size < s->def->max_top ? ms->poll.page_size : s->def->max_top;
    if (!s->enabled) {
        s->enabled = 1;
        s->interval = iv;
        s->failures = 0;
        if (s->last_pass_ms == 0) {
            s->started_ms = util_now_ms();
        }
        log_info("poll.stream_started tenant=%s stream=%s interval_s=%.0f", s->tenant, s->key, iv);
        if (!s->busy) {
            stream_schedule(s, 0);
        }
        return;
    }
    if (iv != s->interval) {
        log_info("poll.stream_interval tenant=%s stream=%s interval_s=%.0f was_s=%.0f", s->tenant,
                 s->key, iv, s->interval);
        s->interval = iv;
        if (!s->busy && evtimer_pending(s->timer, NULL)) {
            int64_t due = s->sched_ms + (int64_t)(stream_delay(s) * 1000);
            int64_t now = util_now_ms();
            int64_t sched = s->sched_ms;

            evtimer_del(s->timer);
            stream_schedule(s, due > now ? (double)(due - now) / 1000.0 : 0);
            s->sched_ms = sched; /* still counted from when the last pass ended */
        }
    }
}

static struct poller *
poller_new(void)
{
    struct poller *p = xcalloc(1, sizeof(*p));

    the_poller = p;
    metrics_add(poll_metrics, NULL);
    return p;
}

static int
poll_start(const struct config *cfg, void **state, char **errp)
{
    struct poller *p = NULL;

    (void)cfg;
    (void)errp;
    *state = NULL;
    for (struct tenant *t = poll_tenant_next(NULL); t != NULL; t = poll_tenant_next(t)) {
        const struct microsoft_conf *ms = ms_settings(NULL, t);

        for (size_t i = 0; ms != NULL && i < NSTREAM_DEFS; i++) {
            if (interval_of(ms, &stream_defs[i]) <= 0) {
                continue;
            }
            if (p == NULL) {
                p = poller_new();
            }
            /* Every stream starts at once; each waits only for its own answers. */
            stream_apply(stream_add(p, t, &stream_defs[i]), ms);
        }
    }
    *state = p;
    return 0;
}

/* What differs between the Microsoft account a tenant was opened with and the one the
 * reloaded file gives (those settings apply at the next start), or NULL. */
static const char *
account_changed(const struct microsoft_conf *a, const struct microsoft_conf *b)
{
    static const size_t offs[] = { offsetof(struct microsoft_conf, authority),
                                   offsetof(struct microsoft_conf, tenant_id),
                                   offsetof(struct microsoft_conf, client_id),
                                   offsetof(struct microsoft_conf, client_secret),
                                   offsetof(struct microsoft_conf, certificate),
                                   offsetof(struct microsoft_conf, private_key),
                                   offsetof(struct microsoft_conf, graph),
                                   offsetof(struct microsoft_conf, graph_scope) };

    if (a == NULL || b == NULL) {
        return a != b ? "the Microsoft block was added or removed" : NULL;
    }
    for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
        const char *x = *(char *const *)((const char *)a + offs[i]);
        const char *y = *(char *const *)((const char *)b + offs[i]);

        if ((x == NULL) != (y == NULL) || (x != NULL && strcmp(x, y) != 0)) {
            return "the Microsoft account (URLs, ids or credentials)";
        }
    }
    return NULL;
}

/* A reload: the poll settings of every open tenant from the file read again, applied to
 * the running streams (stream_apply). The account itself (Graph URL, credentials) and
 * tenants added to the file need a restart: logged, not applied. */
static void
poll_reload(void **state, const struct config *cfg)
{
    struct poller *p = *state;

    if (p != NULL && p->draining) {
        return;
    }
    for (struct tenant *t = poll_tenant_next(NULL); t != NULL; t = poll_tenant_next(t)) {
        const struct microsoft_conf *now = ms_settings(NULL, t);
        const struct microsoft_conf *next = ms_settings(cfg, t);
        const char *changed = account_changed(now, next);

        if (changed != NULL) {
            log_warn("poll.reload_needs_restart tenant=%s changed=%s", tenant_id(t),
                     log_quote(changed));
        }
        if (now == NULL) {
            continue; /* no account to poll with until the next start */
        }
        for (size_t i = 0; i < NSTREAM_DEFS; i++) {
            struct stream *s = p != NULL ? stream_find(p, t, &stream_defs[i]) : NULL;

            if (s == NULL && interval_of(next, &stream_defs[i]) <= 0) {
                continue;
            }
            if (p == NULL) {
                *state = p = poller_new();
            }
            stream_apply(s != NULL ? s : stream_add(p, t, &stream_defs[i]), next);
        }
    }
}

static void
poll_drain(void *state)
{
    struct poller *p = state;

    p->draining = 1;
    for (size_t k = 0; k < p->nstreams; k++) {
        evtimer_del(p->streams[k]->timer);
    }
}

static void
poll_stop(void *state)
{
    struct poller *p = state;

    metrics_remove(poll_metrics, NULL);
    for (size_t k = 0; k < p->nstreams; k++) {
        struct stream *s = p->streams[k];

        call_request_cancel(s->call);
        event_free(s->timer);
        free(s->next);
        free(s->page_next);
        free(s->last_reject);
        free(s);
    }
    free(p->streams);
    free(p);
    the_poller = NULL;
}

static void
poll_describe(void *state, struct buf *b)
{
    struct poller *p = state;
    size_t n = 0;

    for (size_t k = 0; k < p->nstreams; k++) {
        n += p->streams[k]->enabled;
    }
    (void)!buf_printf(b, " graph_poll_streams=%zu", n);
}

const struct source poll_graph_source = {
    .name = "graph-poll",
    .summary = "polls Microsoft Graph for security alerts, incidents, risk detections and "
               "sign-ins (tenants.<id>.microsoft.poll)",
    .config = NULL,
    .start = poll_start,
    .drain = poll_drain,
    .stop = poll_stop,
    .describe = poll_describe,
    .normalize = NULL,
    .reload = poll_reload,
};
