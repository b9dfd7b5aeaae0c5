/* panos_commit.c: panos.commit(). The candidate configuration is committed and the job
 * polled on timers while the run is parked on one effect: no Lua loop, no CPU while it
 * waits, and after a restart the effect is opened again and the machine starts over,
 * which finds the job it left. */
#include "connectors/panos_commit.h"

#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "connectors/panos_api.h"

struct commit_op;

/* A tenant's commit machine, kept by tenant id for the life of the process. */
struct ctenant {
    char *tenant;
    const struct tenant *t; /* the tenant object of a waiting run */
    struct commit_op *cq_head, *cq_tail;
    int cstate;
    char job[32];
    struct call *ccall;
    struct event *ctimer;
    struct ctenant *next;
};

static struct ctenant *ctenants;

/* Summed over tenants (the metrics endpoint is open to every sender). */
static struct {
    unsigned long long commits_ok, commits_failed, commit_waits;
} cstats;
static int metrics_on;

static void
commit_metrics(struct buf *b, void *arg)
{
    (void)arg;
    metrics_labelled(b, "kagari_panos_commits_total", "result", "ok", cstats.commits_ok, 1);
    metrics_labelled(b, "kagari_panos_commits_total", "result", "failed", cstats.commits_failed, 0);
    metrics_counter(b, "kagari_panos_commit_waits_total", NULL, cstats.commit_waits);
}

static struct ctenant *
ctenant_get(const struct tenant *t)
{
    struct ctenant *p;

    if (!metrics_on) {
        metrics_on = 1;
        metrics_add(commit_metrics, NULL);
    }
    for (p = ctenants; p != NULL; p = p->next) {
        if (strcmp(p->tenant, tenant_id(t)) == 0) {
            break;
        }
    }
    if (p == NULL) {
        p = xcalloc(1, sizeof(*p));
        p->tenant = xstrdup(tenant_id(t));
        p->next = ctenants;
        ctenants = p;
    }
    p->t = t;
    return p;
}

/* ---- commit ----
 *
 * One machine per tenant, driven by a timer and the call core (the run is parked on its
 * effect meanwhile, durably: after a restart the effect is opened again and the machine
 * starts over, which finds the job it left):
 *   CHECK  show jobs: a commit job still running (anyone's) is waited for (WAIT), not
 *          joined by a second one that the firewall would refuse;
 *   SEND   the commit; every commit() queued until now is a member of it;
 *   POLL   its job every commit_poll until FIN: OK or FAIL with the job's messages.
 * "Another commit is in progress" sends it back to CHECK; any other error (a held
 * configuration lock) fails the members with the firewall's messages. commit() calls
 * arriving after SEND wait for the next round. */

enum { C_IDLE = 0, C_CHECK, C_WAIT, C_SEND, C_POLL };

struct commit_op {
    struct effect *ef;
    struct ctenant *rt;
    char *description;
    int member;
    struct commit_op *next;
};

static void commit_step(struct ctenant *p);

static void
commit_free(struct commit_op *o)
{
    free(o->description);
    free(o);
}

static void
commit_unqueue(struct commit_op *o)
{
    struct ctenant *p = o->rt;
    struct commit_op **pp = &p->cq_head, *prev = NULL;

    while (*pp != NULL && *pp != o) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp == o) {
        *pp = o->next;
        if (p->cq_tail == o) {
            p->cq_tail = prev;
        }
    }
}

/* Stop the machine (nobody waits any more, or a round ended). */
static void
commit_idle(struct ctenant *p)
{
    call_request_cancel(p->ccall);
    p->ccall = NULL;
    if (p->ctimer != NULL) {
        evtimer_del(p->ctimer);
    }
    p->cstate = C_IDLE;
    p->job[0] = '\0';
}

/* Finish the members (all queued ops with all = 1) with ok and result; then the next
 * round starts if others wait. */
static void
commit_finish(struct ctenant *p, int all, int ok, const char *result)
{
    struct commit_op *o = p->cq_head, *next;

    if (ok) {
        cstats.commits_ok++;
    } else {
        cstats.commits_failed++;
    }
    commit_idle(p);
    for (; o != NULL; o = next) {
        next = o->next;
        if (all || o->member) {
            struct effect *ef = o->ef;

            commit_unqueue(o);
            commit_free(o);
            effect_done(ef, ok, result);
        }
    }
    if (p->cq_head != NULL) {
        p->cstate = C_CHECK;
        commit_step(p);
    }
}

static void
commit_cancel(void *op)
{
    struct commit_op *o = op;
    struct ctenant *p = o->rt;

    commit_unqueue(o);
    commit_free(o);
    if (p->cq_head == NULL) {
        commit_idle(p);
    }
}

static void
commit_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    commit_step(arg);
}

static void
commit_later(struct ctenant *p)
{
    const struct panos_conf *conf =
        p->cq_head != NULL
            ? tenant_conf(run_tenant(effect_owner(p->cq_head->ef)), &panos_api_section)
            : NULL;
    double s = conf != NULL ? conf->commit_poll : 2;
    struct timeval tv;

    if (p->ctimer == NULL) {
        p->ctimer = evtimer_new(loop_base(), commit_timer, p);
    }
    tv.tv_sec = (time_t)s;
    tv.tv_usec = (suseconds_t)((s - floor(s)) * 1e6);
    evtimer_add(p->ctimer, &tv);
}

static void commit_answered(void *arg, int ok, const char *result);

static void
commit_call(struct ctenant *p, const char *kind, const char *method, const char *path,
            const char *body)
{
    struct call_spec spec = { 0 };
    char *err = NULL;

    spec.kind = kind;
    spec.api = &panos_api_xml;
    spec.limiter = "panos";
    spec.prio = LIMITER_NORMAL;
    spec.idempotent = 1; /* reads; a repeated commit finds nothing to commit or a job */
    spec.method = method;
    spec.path = path;
    spec.body = body;
    spec.body_format = CALL_BODY_FORM;
    spec.map = panos_api_map_raw;
    p->ccall = call_request(p->t, &spec, commit_answered, p, &err);
    if (p->ccall == NULL) {
        char *msg = xasprintf("panos.commit: %s", err ? err : "not configured");

        commit_finish(p, 1, 0, msg);
        free(msg);
    }
    free(err);
}

static void
commit_step(struct ctenant *p)
{
    char *cmd = NULL, *path = NULL;

    if (p->cq_head == NULL) {
        commit_idle(p);
        return;
    }
    p->t = run_tenant(effect_owner(p->cq_head->ef)); /* current even across a reload */

    switch (p->cstate) {
    case C_CHECK:
        path = panos_api_op_path("<show><jobs><all/></jobs></show>");
        commit_call(p, "panos.show_jobs", "GET", path, NULL);
        break;
    case C_WAIT:
    case C_POLL:
        cmd = xasprintf("<show><jobs><id>%s</id></jobs></show>", p->job);
        path = panos_api_op_path(cmd);
        commit_call(p, "panos.show_job", "GET", path, NULL);
        break;
    case C_SEND: {
        struct buf x;
        const char *desc = NULL;
        char *esc, *body;

        for (struct commit_op *o = p->cq_head; o != NULL; o = o->next) {
            o->member = 1;
            if (desc == NULL && o->description != NULL) {
                desc = o->description;
            }
        }
        buf_init(&x, 0);
        (void)!buf_puts(&x, "<commit>");
        if (desc != NULL) {
            (void)!buf_puts(&x, "<description>");
            (void)!xml_escape(&x, desc);
            (void)!buf_puts(&x, "</description>");
        }
        (void)!buf_puts(&x, "</commit>");
        esc = call_escape(x.data);
        body = xasprintf("type=commit&cmd=%s", esc);
        buf_free(&x);
        free(esc);
        commit_call(p, "panos.commit", "POST", "/api/", body);
        free(body);
        break;
    }
    default:
        break;
    }
    free(cmd);
    free(path);
}

/* A job id from the firewall goes into the next command: digits only. */
static int
job_id_ok(const char *s)
{
    size_t n = strspn(s, "0123456789");

    return n > 0 && n < 20 && s[n] == '\0';
}

static void
commit_answered(void *arg, int ok, const char *result)
{
    struct ctenant *p = arg;
    struct xml_node *root = NULL;
    const struct xml_node *job;
    const char *status;
    char *msg = NULL;

    p->ccall = NULL;
    if (!ok) {
        msg = xasprintf("panos.commit: %s", result);
        commit_finish(p, p->cstate != C_SEND && p->cstate != C_POLL, 0, msg);
        free(msg);
        return;
    }
    if (panos_api_raw_parse(result, &root) == -1) {
        commit_finish(p, 1, 0, "panos.commit: unreadable answer");
        return;
    }
    status = xml_attr(root, "status");
    switch (p->cstate) {
    case C_CHECK:
        p->cstate = C_SEND;
        if (strcmp(status, "success") != 0) {
            msg = panos_api_error("panos.commit: show jobs", root);
            commit_finish(p, 1, 0, msg);
            break;
        }
        for (job = xml_child(xml_child(root, "result"), "job"); job != NULL; job = job->next) {
            const char *type = xml_path_text(job, "type"), *st = xml_path_text(job, "status");
            const char *id = xml_path_text(job, "id");

            if (strcmp(job->name, "job") == 0 && type != NULL && strcasecmp(type, "Commit") == 0 &&
                st != NULL && strcmp(st, "FIN") != 0 && id != NULL && job_id_ok(id)) {
                snprintf(p->job, sizeof(p->job), "%s", id);
                p->cstate = C_WAIT;
                log_info("panos.commit_wait tenant=%s job=%s", p->tenant, p->job);
                cstats.commit_waits++;
                break;
            }
        }
        if (p->cstate == C_WAIT) {
            commit_later(p);
        } else {
            commit_step(p);
        }
        break;
    case C_SEND: {
        const char *id = xml_path_text(root, "result/job");
        struct buf b;

        buf_init(&b, 4096);
        xml_text_all(root, &b, "; ");
        if (strcmp(status, "success") == 0 && id != NULL && job_id_ok(id)) {
            snprintf(p->job, sizeof(p->job), "%s", id);
            p->cstate = C_POLL;
            log_info("panos.commit_job tenant=%s job=%s", p->tenant, p->job);
            commit_later(p);
        } else if (strcmp(status, "success") == 0) { /* "There are no changes to commit." */
            cJSON *r = cJSON_CreateObject(), *m = cJSON_AddArrayToObject(r, "messages");

            cJSON_AddStringToObject(r, "result", "OK");
            if (b.len > 0) {
                cJSON_AddItemToArray(m, cJSON_CreateString(b.data));
            }
            msg = json_print(r);
            cJSON_Delete(r);
            commit_finish(p, 0, 1, msg);
        } else if (b.len > 0 && strstr(b.data, "in progress") != NULL) {
            p->cstate = C_CHECK; /* another commit started meanwhile: wait for it */
            commit_later(p);
        } else {
            msg = panos_api_error("panos.commit", root);
            commit_finish(p, 0, 0, msg);
        }
        buf_free(&b);
        break;
    }
    case C_WAIT:
    case C_POLL: {
        const struct xml_node *j = xml_path(root, "result/job");
        const char *st = xml_path_text(j, "status"), *res = xml_path_text(j, "result");

        if (strcmp(status, "success") != 0 || j == NULL) {
            msg = panos_api_error("panos.commit: show job", root);
            commit_finish(p, p->cstate == C_WAIT, 0, msg);
        } else if (st == NULL || strcmp(st, "FIN") != 0) {
            commit_later(p);
        } else if (p->cstate == C_WAIT) {
            p->cstate = C_SEND; /* the other commit is done: ours now */
            commit_step(p);
        } else {
            cJSON *r = cJSON_CreateObject(), *m = cJSON_AddArrayToObject(r, "messages");
            struct buf b;
            int good = res != NULL && strcmp(res, "OK") == 0;

            buf_init(&b, 8192);
            for (const struct xml_node *l = xml_path(j, "details") ? xml_path(j, "details")->child
                                                                   : NULL;
                 l != NULL; l = l->next) {
                struct buf one;

                buf_init(&one, 4096);
                xml_text_all(l, &one, " ");
                if (one.len > 0) {
                    cJSON_AddItemToArray(m, cJSON_CreateString(one.data));
                    (void)!buf_printf(&b, "%s%s", b.len > 0 ? "; " : "", one.data);
                }
                buf_free(&one);
            }
            cJSON_AddStringToObject(r, "job", p->job);
            cJSON_AddStringToObject(r, "result", res != NULL ? res : "");
            if (good) {
                msg = json_print(r);
            } else {
                msg = xasprintf("panos.commit: job %s ended %s: %s", p->job,
                                res != NULL ? res : "without a result",
                                b.len > 0 ? b.data : "no details");
            }
            cJSON_Delete(r);
            buf_free(&b);
            commit_finish(p, 0, good, msg);
        }
        break;
    }
    default:
        break;
    }
    free(msg);
    xml_free(root);
}

struct commit_args {
    const char *description;
};

static char *
commit_check(struct run *r, void *arg)
{
    (void)arg;
    return tenant_conf(run_tenant(r), &panos_api_section) == NULL
               ? xstrdup(panos_api_xml.not_configured)
               : NULL;
}

static void *
commit_open(struct effect *ef, void *arg)
{
    const struct commit_args *a = arg;
    struct commit_op *o = xcalloc(1, sizeof(*o));

    o->ef = ef;
    o->rt = ctenant_get(run_tenant(effect_owner(ef)));
    o->description = a->description != NULL ? xstrdup(a->description) : NULL;
    return o;
}

static void
commit_start(void *op)
{
    struct commit_op *o = op;
    struct ctenant *p = o->rt;

    o->next = NULL;
    if (p->cq_tail != NULL) {
        p->cq_tail->next = o;
    } else {
        p->cq_head = o;
    }
    p->cq_tail = o;
    if (p->cstate == C_IDLE) {
        p->cstate = C_CHECK;
        commit_step(p);
    }
}

/* panos.commit({description=}): commit the candidate configuration and wait for its job. */
int
panos_commit_lua(lua_State *L)
{
    static const char *const keys[] = { "description", NULL };
    struct commit_args a = { NULL };
    struct effect_spec es = { 0 };
    cJSON *req;
    char *text;

    lua_settop(L, 1);
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        if (lcheck_unknown_key(L, 1, keys)) {
            return luaL_argerror(L, 1,
                                 lua_pushfstring(L, "unknown option '%s'", lua_tostring(L, -1)));
        }
    }
    if (lua_istable(L, 1) && lua_getfield(L, 1, "description") != LUA_TNIL) {
        size_t len;
        const char *d = lua_tolstring(L, -1, &len);
        struct buf probe;
        int bad;

        buf_init(&probe, 0);
        bad = lua_type(L, -1) != LUA_TSTRING || len > 512 || strlen(d) != len ||
              xml_escape(&probe, d) == -1;
        buf_free(&probe);
        if (bad) {
            return luaL_argerror(L, 1,
                                 "description: expected text of at most 512 bytes of UTF-8 "
                                 "without control characters");
        }
        a.description = d;
    }
    req = cJSON_CreateObject();
    if (a.description != NULL) {
        cJSON_AddStringToObject(req, "description", a.description);
    }
    text = json_print(req);
    cJSON_Delete(req);
    lua_pushstring(L, text);
    free(text);
    es.kind = "panos.commit";
    es.request = lua_tostring(L, -1);
    es.flags = EFFECT_OUTSIDE | EFFECT_IDEMPOTENT;
    es.check = commit_check;
    es.open = commit_open;
    es.start = commit_start;
    es.cancel = commit_cancel;
    es.arg = &a;
    return effect_run(L, &es);
}

void
panos_commit_shutdown(void)
{
    if (metrics_on) {
        metrics_remove(commit_metrics, NULL);
        metrics_on = 0;
    }
    while (ctenants != NULL) {
        struct ctenant *p = ctenants;

        ctenants = p->next;
        call_request_cancel(p->ccall);
        if (p->ctimer != NULL) {
            event_free(p->ctimer);
        }
        free(p->tenant);
        free(p);
    }
}
