/* events.c: the event store's policy: the tenants' events block and alert rule, pruning
 * by retention, and the playbooks' events module. */
#include "engine/events.h"

#include <lauxlib.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "engine/journal.h"
#include "engine/kagari.h"
#include "engine/loop.h"
#include "engine/store.h"
#include "engine/tenant.h"

#define EVENTS_PRUNE_EVERY_MS 1000 /* between passes while nothing is left to delete */
#define EVENTS_PRUNE_AGAIN_MS 20   /* between passes while a backlog is being deleted */
#define EVENTS_FILTER_MAX 1024     /* bytes of one filter value */

/* ---- settings ---- */

static const struct config_field events_fields[] = {
    { "retention", CONFIG_DURATION, offsetof(struct events_conf, retention), 3600,
      100 * 366 * 86400.0, NULL, 0 },
    { "alerts", CONFIG_STRINGS, offsetof(struct events_conf, alerts), 0, 0, NULL,
      offsetof(struct events_conf, nalerts) },
    CONFIG_FIELDS_END,
};

static const char *const outcome_bits[] = { "unknown", "blocked", "attempted", "succeeded" };

/* A source pattern: a name of [a-z0-9._-], optionally ending in ".*", or "*". */
static int
pattern_valid(const char *p)
{
    size_t n = strlen(p);

    if (strcmp(p, "*") == 0) {
        return 1;
    }
    if (n >= 2 && strcmp(p + n - 2, ".*") == 0) {
        n -= 2;
    }
    if (n == 0 || n > 64) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') ||
              strchr("._-", p[i]) != NULL)) {
            return 0;
        }
    }
    return 1;
}

int
events_rule_parse(const char *text, struct events_rule *r, char **errp)
{
    char *copy = xstrdup(text), *save = NULL, *tok;
    int first = 1, rc = -1;

    memset(r, 0, sizeof(*r));
    r->min_severity = -1;
    for (tok = strtok_r(copy, " \t", &save); tok != NULL; tok = strtok_r(NULL, " \t", &save)) {
        if (first) {
            first = 0;
            if (strcmp(tok, "default") == 0) {
                r->kind = EVENTS_RULE_DEFAULT;
                snprintf(r->source, sizeof(r->source), "*");
                continue;
            }
            if (tok[0] == '!') {
                r->kind = EVENTS_RULE_EVENT;
                tok++;
            }
            if (!pattern_valid(tok)) {
                kg_err(errp,
                       "\"%s\": expected a source name such as panos.threat, a prefix "
                       "such as panos.*, * or default first",
                       tok);
                goto out;
            }
            snprintf(r->source, sizeof(r->source), "%s", tok);
        } else if (strncmp(tok, "severity>=", 10) == 0) {
            if ((r->min_severity = severity_from_name(tok + 10)) < 0) {
                kg_err(errp, "\"%s\": expected a level (informational .. critical)", tok);
                goto out;
            }
        } else if (strncmp(tok, "outcome=", 8) == 0) {
            char *o = tok + 8, *bar;

            do {
                size_t i;

                bar = strchr(o, '|');
                if (bar != NULL) {
                    *bar = '\0';
                }
                for (i = 0; i < 4 && strcmp(o, outcome_bits[i]) != 0; i++) {
                }
                if (i == 4) {
                    kg_err(errp, "\"%s\": expected unknown, blocked, attempted or succeeded", o);
                    goto out;
                }
                r->outcomes |= 1u << i;
                o = bar + 1;
            } while (bar != NULL);
        } else if (strncmp(tok, "category=", 9) == 0 && tok[9] != '\0' && strlen(tok + 9) <= 64) {
            snprintf(r->category, sizeof(r->category), "%s", tok + 9);
        } else {
            kg_err(errp, "\"%s\": expected severity>=LEVEL, outcome=OUTCOME or category=NAME", tok);
            goto out;
        }
    }
    if (first) {
        kg_err(errp, "an empty rule");
        goto out;
    }
    if (r->kind == EVENTS_RULE_DEFAULT && (r->min_severity >= 0 || r->outcomes || r->category[0])) {
        kg_err(errp, "\"default\" takes no conditions");
        goto out;
    }
    rc = 0;
out:
    free(copy);
    return rc;
}

static int
events_check(void *conf, char **errp)
{
    struct events_conf *c = conf;

    if (c->retention == 0) {
        c->retention = EVENTS_RETENTION_DEFAULT;
    }
    if (c->nalerts > EVENTS_RULES_MAX) {
        return kg_err(errp, "alerts: at most %d rules", EVENTS_RULES_MAX);
    }
    for (size_t i = 0; i < c->nalerts; i++) {
        char *err = NULL;

        if (events_rule_parse(c->alerts[i], &c->rules[i], &err) == -1) {
            kg_err(errp, "alerts[%zu]: %s", i + 1, err);
            free(err);
            return -1;
        }
    }
    c->nrules = c->nalerts;
    return 0;
}

const struct config_section events_section = {
    "events",
    events_fields,
    sizeof(struct events_conf),
    events_check,
    "--         events = { retention = \"30d\",  -- events older than this are deleted\n"
    "--                    alerts = { \"!panos.system category=ha\", \"default\" } },\n",
};

static int
source_matches(const char *pattern, const char *source)
{
    size_t n = strlen(pattern);

    if (strcmp(pattern, "*") == 0) {
        return 1;
    }
    if (n >= 2 && strcmp(pattern + n - 2, ".*") == 0) {
        return strncmp(source, pattern, n - 1) == 0; /* "panos." is a prefix */
    }
    return strcmp(pattern, source) == 0;
}

int
events_decide(const struct events_conf *conf, const char *source, int severity, const char *outcome,
              const char *category, int dflt)
{
    if (conf == NULL || conf->nrules == 0) {
        return dflt;
    }
    for (size_t i = 0; i < conf->nrules; i++) {
        const struct events_rule *r = &conf->rules[i];

        if (!source_matches(r->source, source != NULL ? source : "")) {
            continue;
        }
        if (r->min_severity >= 0 && severity < r->min_severity) {
            continue;
        }
        if (r->outcomes != 0) {
            size_t k;

            for (k = 0; k < 4 && (outcome == NULL || strcmp(outcome, outcome_bits[k]) != 0); k++) {
            }
            if (k == 4 || !(r->outcomes & (1u << k))) {
                continue;
            }
        }
        if (r->category[0] != '\0' && (category == NULL || strcmp(category, r->category) != 0)) {
            continue;
        }
        return r->kind == EVENTS_RULE_DEFAULT ? dflt : r->kind == EVENTS_RULE_ALERT;
    }
    return 0;
}

int
admit_is_alert(const struct tenant *t, const struct alert *a, int dflt)
{
    return events_decide(tenant_conf(t, &events_section), a->source, a->severity, a->outcome,
                         a->category, dflt);
}

void
events_register(void)
{
    config_add_section(&events_section);
}

/* ---- pruning ---- */

static struct event *prune_timer;
static unsigned long long pruned, prune_failed;

/* Upper bounds (seconds) of the buckets of kagari_events_query_seconds: how long the
 * store took to answer one events.query or events.count (on the loop). */
static const double query_bounds[] = { 0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005,
                                       0.0075,  0.01,   0.025, 0.05,  0.1,   0.25 };
#define QUERY_NB (sizeof(query_bounds) / sizeof(query_bounds[0]))
static unsigned long long query_buckets[QUERY_NB + 1], query_count;
static double query_sum;

static void
query_timed(int64_t us)
{
    double secs = (double)us / 1e6;
    size_t i = 0;

    while (i < QUERY_NB && secs > query_bounds[i]) {
        i++;
    }
    query_buckets[i]++;
    query_count++;
    query_sum += secs;
}

static void
prune_arm(int64_t ms)
{
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

    evtimer_add(prune_timer, &tv);
}

/* One pass over the tenants: each deletes at most EVENTS_PRUNE_BATCH expired events in
 * the iteration's transaction, so no pass holds the loop for long; while one has more,
 * the next pass comes soon. */
static void
prune_pass(evutil_socket_t fd, short what, void *arg)
{
    int64_t now = util_now_ms();
    int more = 0;

    (void)fd;
    (void)what;
    (void)arg;
    for (struct tenant *t = tenants_first(); t != NULL; t = t->next) {
        const struct events_conf *c = tenant_conf(t, &events_section);
        double keep = c != NULL ? c->retention : EVENTS_RETENTION_DEFAULT;
        char *err = NULL;
        int deleted = 0, any;
        int64_t first = 0, cutoff = now - (int64_t)(keep * 1000);

        /* Look first (a read): a pass with nothing due writes nothing, so an idle
         * tenant's database sees no transaction and its WAL can be truncated. */
        if (loop_locked(t->db) || (any = store_event_first(t->db, &first, &err)) == 0 ||
            (any == 1 && first >= cutoff)) {
            continue;
        }
        if (any == -1 || loop_write_lazy(t->db, &err) == -1 ||
            store_event_prune(t->db, cutoff, EVENTS_PRUNE_BATCH, &deleted, &err) == -1) {
            if (err != NULL) {
                prune_failed++;
                log_warn("events.prune_failed tenant=%s error=%s", t->id, log_quote(err));
                free(err);
            }
            continue;
        }
        if (deleted > 0) {
            pruned += (unsigned long long)deleted;
            log_debug("events.pruned tenant=%s n=%d", t->id, deleted);
        }
        more |= deleted == EVENTS_PRUNE_BATCH;
    }
    prune_arm(more ? EVENTS_PRUNE_AGAIN_MS : EVENTS_PRUNE_EVERY_MS);
}

static void
events_metrics(struct buf *b, void *arg)
{
    (void)arg;
    metrics_counter(b, "kagari_events_pruned_total", "events deleted after their retention",
                    pruned);
    metrics_counter(b, "kagari_events_prune_failures_total", NULL, prune_failed);
    {
        unsigned long long cum = 0;

        (void)!buf_puts(b, "# HELP kagari_events_query_seconds The store's time to answer one "
                           "events.query or events.count.\n"
                           "# TYPE kagari_events_query_seconds histogram\n");
        for (size_t i = 0; i < QUERY_NB; i++) {
            cum += query_buckets[i];
            (void)!buf_printf(b, "kagari_events_query_seconds_bucket{le=\"%g\"} %llu\n",
                              query_bounds[i], cum);
        }
        (void)!buf_printf(b,
                          "kagari_events_query_seconds_bucket{le=\"+Inf\"} %llu\n"
                          "kagari_events_query_seconds_sum %.6f\n"
                          "kagari_events_query_seconds_count %llu\n",
                          query_count, query_sum, query_count);
    }
}

void
events_start(void)
{
    if (prune_timer == NULL) {
        prune_timer = evtimer_new(loop_base(), prune_pass, NULL);
        prune_arm(EVENTS_PRUNE_EVERY_MS);
        metrics_add(events_metrics, NULL);
    }
}

void
events_stop(void)
{
    if (prune_timer != NULL) {
        event_free(prune_timer);
        prune_timer = NULL;
        metrics_remove(events_metrics, NULL);
    }
}

/* ---- the playbooks' events module ---- */

struct query {
    struct store_event_filter f;
    const char *since, *until; /* as given, resolved against the entry's start */
    int count;
};

/* A time bound: a duration back from ref ("24h", or seconds as a number) or an RFC 3339
 * time. */
static int
bound(const char *v, int64_t ref, int64_t *ms)
{
    double secs;

    if (util_parse_duration(v, &secs) == 0) {
        *ms = ref - (int64_t)(secs * 1000);
        return 0;
    }
    return util_parse_time(v, ms);
}

static void *
query_open(struct effect *ef, void *arg)
{
    struct query *q = arg;
    struct tenant *t = run_tenant(effect_owner(ef));
    int64_t ref = effect_started_ms(ef), t0;
    char *err = NULL;
    struct buf out;

    q->f.since_ms = 0;
    q->f.until_ms = INT64_MAX;
    if ((q->since != NULL && bound(q->since, ref, &q->f.since_ms) == -1) ||
        (q->until != NULL && bound(q->until, ref, &q->f.until_ms) == -1)) {
        effect_done(ef, 0, "since/until: expected a duration such as \"24h\" or an RFC 3339 time");
        return NULL;
    }
    buf_init(&out, JOURNAL_RESULT_MAX);
    t0 = util_mono_us();
    if (q->count) {
        int64_t n = 0;

        if (store_event_count(t->db, &q->f, &n, &err) == 0) {
            (void)!buf_printf(&out, "%lld", (long long)n);
        }
    } else {
        size_t n = 0;

        (void)!store_event_query(t->db, &q->f, &out, &n, &err);
    }
    query_timed(util_mono_us() - t0);
    if (err != NULL) {
        effect_done(ef, 0, err);
        free(err);
    } else {
        effect_done(ef, 1, out.data);
    }
    buf_free(&out);
    return NULL;
}

/* Read one optional string option of the table at 1 into *v and add it to the request.
 * The value stays on the stack (the caller's frame keeps it alive for the effect). */
static void
opt_string(lua_State *L, const char *key, const char **v)
{
    size_t len;

    *v = NULL;
    if (lua_getfield(L, 1, key) == LUA_TNIL) {
        lua_pop(L, 1);
        return;
    }
    if (lua_type(L, -1) == LUA_TNUMBER &&
        (strcmp(key, "since") == 0 || strcmp(key, "until") == 0)) {
        lua_Number secs = lua_tonumber(L, -1);

        if (!(secs >= 0 && secs < 1e10)) {
            luaL_error(L, "events: %s: expected seconds from 0", key);
        }
        lua_pushfstring(L, "%f", secs);
        lua_replace(L, -2);
    }
    if (lua_type(L, -1) != LUA_TSTRING) {
        luaL_error(L, "events: %s: expected a string", key);
    }
    *v = lua_tolstring(L, -1, &len);
    if (len == 0 || len > EVENTS_FILTER_MAX || strlen(*v) != len) {
        luaL_error(L, "events: %s: expected 1 to %d bytes without NUL", key, EVENTS_FILTER_MAX);
    }
}

static void
req_add(struct buf *req, const char *key, const char *v)
{
    if (v != NULL) {
        (void)!buf_printf(req, ",\"%s\":", key);
        (void)!buf_json_string(req, v, strlen(v));
    }
}

static int
events_call(lua_State *L, int count)
{
    static const char *const keys[] = { "user",  "ip",    "device", "source",
                                        "since", "until", "limit",  NULL };
    const char *name = count ? "events.count" : "events.query";
    int max = count ? EVENTS_COUNT_MAX : EVENTS_QUERY_MAX;
    struct effect_spec spec = { 0 };
    struct query q;
    struct buf req;
    lua_Integer limit = count ? EVENTS_COUNT_MAX : EVENTS_QUERY_LIMIT;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    luaL_checkstack(L, 16, name);
    if (lcheck_unknown_key(L, 1, keys)) {
        return luaL_error(L, "%s: unknown option '%s'", name, lua_tostring(L, -1));
    }
    if (lua_getfield(L, 1, "limit") != LUA_TNIL) {
        int isnum = 0;

        limit = lua_tointegerx(L, -1, &isnum);
        if (!isnum || limit < 1 || limit > max) {
            return luaL_error(L, "%s: limit: expected an integer from 1 to %d", name, max);
        }
    }
    lua_pop(L, 1);
    memset(&q, 0, sizeof(q));
    q.count = count;
    q.f.limit = (int)limit;
    opt_string(L, "user", &q.f.user);
    opt_string(L, "ip", &q.f.ip);
    opt_string(L, "device", &q.f.device);
    opt_string(L, "source", &q.f.source);
    opt_string(L, "outcome", &q.f.outcome);
    opt_string(L, "since", &q.since);
    opt_string(L, "until", &q.until);
    buf_init(&req, 0); /* nothing raises from here to the push */
    (void)!buf_printf(&req, "{\"limit\":%lld", (long long)limit);
    req_add(&req, "user", q.f.user);
    req_add(&req, "ip", q.f.ip);
    req_add(&req, "device", q.f.device);
    req_add(&req, "source", q.f.source);
    req_add(&req, "outcome", q.f.outcome);
    req_add(&req, "since", q.since);
    req_add(&req, "until", q.until);
    (void)!buf_puts(&req, "}");
    lua_pushlstring(L, req.data, req.len);
    buf_free(&req);
    spec.kind = name;
    spec.request = lua_tostring(L, -1);
    spec.open = query_open;
    spec.arg = &q;
    return effect_run(L, &spec);
}

/* events.query{user=, ip=, device=, source=, since=, until=, limit=}: the matching events,
 * newest first (at most limit, default 100, up to 1000). */
static int
l_events_query(lua_State *L)
{
    return events_call(L, 0);
}

/* events.count{...}: how many match (counting up to limit, default and at most 10^6). */
static int
l_events_count(lua_State *L)
{
    return events_call(L, 1);
}

int
events_luaopen(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        { "query", l_events_query },
        { "count", l_events_count },
        { NULL, NULL },
    };

    luaL_newlib(L, funcs);
    return 1;
}
