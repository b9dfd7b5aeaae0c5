/* approval.c: approve{} as an effect, its pending ops, timeouts and decisions. */
#include "engine/approval.h"

#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/kagari.h"
#include "engine/lcheck.h"
#include "engine/log.h"
#include "engine/loop.h"
#include "engine/store.h"
#include "engine/tenant.h"

/* A run parked on an approval. */
struct approval_op {
    struct effect *ef;
    struct tenant *t;
    int64_t id;
    int64_t deadline;
    char *effects; /* JSON: what an approval allows */
    struct event *timer;
    struct approval_op *next;
};

static struct approval_op *pending; /* every parked approval, few */

static void
op_unlink(struct approval_op *op)
{
    for (struct approval_op **p = &pending; *p != NULL; p = &(*p)->next) {
        if (*p == op) {
            *p = op->next;
            return;
        }
    }
}

static void
op_free(struct approval_op *op)
{
    op_unlink(op);
    if (op->timer != NULL) {
        event_free(op->timer);
    }
    free(op->effects);
    free(op);
}

static struct approval_op *
op_find(const struct tenant *t, int64_t id)
{
    for (struct approval_op *op = pending; op != NULL; op = op->next) {
        if (op->t == t && op->id == id) {
            return op;
        }
    }
    return NULL;
}

/* The effect's result: the decision, who made it, when, with which comments. */
static char *
result_json(struct store_tenant *db, const struct store_approval *a)
{
    cJSON *o = cJSON_CreateObject(), *by;
    struct store_vote *v = NULL;
    size_t n = 0;
    char ts[32];
    char *text;
    int approved =
        strcmp(a->state, "approved") == 0 ||
        (strcmp(a->state, "expired") == 0 && strcmp(a->default_decision, "approve") == 0);

    cJSON_AddNumberToObject(o, "id", (double)a->id);
    cJSON_AddBoolToObject(o, "approved", approved);
    cJSON_AddStringToObject(o, "decision", approved ? "approved" : "rejected");
    cJSON_AddBoolToObject(o, "timed_out", strcmp(a->state, "expired") == 0);
    util_fmt_time(a->decided, ts);
    cJSON_AddStringToObject(o, "at", ts);
    by = cJSON_AddArrayToObject(o, "by");
    if (store_approval_votes(db, a->id, &v, &n, NULL) == 0) {
        for (size_t i = 0; i < n; i++) {
            cJSON *e = cJSON_CreateObject();

            cJSON_AddStringToObject(e, "user", v[i].user);
            cJSON_AddStringToObject(e, "decision", v[i].decision);
            if (v[i].comment != NULL) {
                cJSON_AddStringToObject(e, "comment", v[i].comment);
            }
            util_fmt_time(v[i].at, ts);
            cJSON_AddStringToObject(e, "at", ts);
            cJSON_AddItemToArray(by, e);
        }
        if (n > 0 && v[n - 1].comment != NULL) {
            cJSON_AddStringToObject(o, "comment", v[n - 1].comment);
        }
    }
    store_votes_free(v, n);
    text = json_print(o);
    cJSON_Delete(o);
    return text;
}

/* The approval is decided (a row no longer pending): the run continues with it. */
static void
op_finish(struct approval_op *op, const struct store_approval *a)
{
    struct effect *ef = op->ef;
    char *res = result_json(op->t->db, a);

    if (strcmp(a->state, "approved") == 0 ||
        (strcmp(a->state, "expired") == 0 && strcmp(a->default_decision, "approve") == 0)) {
        if (op->effects != NULL && strcmp(op->effects, "[]") != 0) {
            run_set_approved(effect_owner(ef), op->effects);
        }
    }
    log_info("approval.decided tenant=%s id=%lld state=%s", op->t->id, (long long)a->id, a->state);
    op_free(op);
    effect_done(ef, 1, res);
    free(res);
}

/* Its time ran out: the default applies, recorded as expired. */
static void
op_expire(evutil_socket_t fd, short what, void *arg)
{
    struct approval_op *op = arg;
    struct store_approval a;
    char *err = NULL;
    int64_t now = util_now_ms();
    int changed = 0;

    (void)fd;
    (void)what;
    if (now < op->deadline) {
        struct timeval tv = { (time_t)((op->deadline - now) / 1000),
                              (suseconds_t)((op->deadline - now) % 1000 * 1000) };

        evtimer_add(op->timer, &tv);
        return;
    }
    if (loop_write(op->t->db, &err) == -1 ||
        (changed = store_approval_decide(op->t->db, op->id, "expired", now, &err)) == -1 ||
        store_approval_get(op->t->db, op->id, &a, &err) != 1) {
        struct timeval retry = { 1, 0 };

        log_err("approval.expire_failed tenant=%s id=%lld error=%s", op->t->id, (long long)op->id,
                log_quote(err ? err : "?"));
        free(err);
        evtimer_add(op->timer, &retry);
        return;
    }
    if (changed == 1) {
        /* The default applied: in the customer's history with the decision it made. */
        char target[48], *detail;

        snprintf(target, sizeof(target), "approval:%lld", (long long)op->id);
        detail = xasprintf("{\"run\":%lld,\"default\":\"%s\",\"decision\":\"%s\","
                           "\"reason\":\"timeout\"}",
                           (long long)a.run_id, a.default_decision,
                           strcmp(a.default_decision, "approve") == 0 ? "approved" : "rejected");
        tenant_audit_committed(op->t, "engine", "approval.expired", target, "ok", detail);
        free(detail);
    }
    op_finish(op, &a);
    store_approval_free(&a);
}

/* The wall clock stepped (an operator, NTP, the test clock): every armed deadline is
 * looked at again at once (op_expire arms it anew when it is not due). */
static void
approval_clock_stepped(void *arg)
{
    struct timeval now = { 0, 0 };

    (void)arg;
    for (struct approval_op *op = pending; op != NULL; op = op->next) {
        if (evtimer_pending(op->timer, NULL)) {
            evtimer_add(op->timer, &now);
        }
    }
}

static void
approve_start(void *arg)
{
    struct approval_op *op = arg;
    int64_t left = op->deadline - util_now_ms();
    struct timeval tv;

    if (left < 0) {
        left = 0;
    }
    tv.tv_sec = (time_t)(left / 1000);
    tv.tv_usec = (suseconds_t)((left % 1000) * 1000);
    evtimer_add(op->timer, &tv);
}

static void
approve_cancel(void *arg)
{
    op_free(arg); /* the row stays pending: a replay after a restart waits on it again */
}

struct approve_args {
    const char *title, *detail, *effects, *role, *deflt;
    int approvers;
    double timeout;
};

/* Find the approval of this step (the run and the step's first start) or create it;
 * decided already (a replay): finish at once. */
static void *
approve_open(struct effect *ef, void *arg)
{
    const struct approve_args *aa = arg;
    struct run *r = effect_owner(ef);
    struct tenant *t = run_tenant(r);
    struct store_approval a;
    struct approval_op *op;
    char *err = NULL;
    int found;
    int64_t id = 0;

    if (loop_write(t->db, &err) == -1) {
        effect_done(ef, 0, "approvals are unavailable: the tenant database cannot be written");
        free(err);
        return NULL;
    }
    found = store_approval_find(t->db, run_id(r), effect_started_ms(ef), &a, &err);
    if (found == -1) {
        effect_done(ef, 0, err ? err : "approval lookup failed");
        free(err);
        return NULL;
    }
    if (found == 0) {
        memset(&a, 0, sizeof(a));
        a.run_id = run_id(r);
        a.created = effect_started_ms(ef);
        a.title = (char *)aa->title;
        a.detail = (char *)aa->detail;
        a.effects = (char *)aa->effects;
        snprintf(a.role, sizeof(a.role), "%s", aa->role);
        a.approvers = aa->approvers;
        a.deadline = a.created + (int64_t)(aa->timeout * 1000);
        snprintf(a.default_decision, sizeof(a.default_decision), "%s", aa->deflt);
        /* The person who started the run by hand, if one did: never a decider of it. */
        if (store_run_requester(t->db, run_id(r), &a.requester, &err) == -1 ||
            store_approval_add(t->db, &a, &id, &err) == -1) {
            free(a.requester);
            effect_done(ef, 0, err ? err : "approval add failed");
            free(err);
            return NULL;
        }
        free(a.requester);
        a.requester = NULL;
        log_info("approval.created tenant=%s run=%lld id=%lld role=%s approvers=%d", t->id,
                 (long long)run_id(r), (long long)id, aa->role, aa->approvers);
        memset(&a, 0, sizeof(a));
        if (store_approval_get(t->db, id, &a, &err) != 1) {
            effect_done(ef, 0, err ? err : "approval lookup failed");
            free(err);
            return NULL;
        }
    }
    op = xcalloc(1, sizeof(*op));
    op->ef = ef;
    op->t = t;
    op->id = a.id;
    op->deadline = a.deadline;
    op->effects = xstrdup(a.effects ? a.effects : "[]");
    op->timer = evtimer_new(loop_base(), op_expire, op);
    op->next = pending;
    pending = op;
    loop_on_clock_step(approval_clock_stepped, NULL);
    if (strcmp(a.state, "pending") != 0) {
        op_finish(op, &a); /* records the result inside open */
        store_approval_free(&a);
        return NULL;
    }
    store_approval_free(&a);
    return op;
}

static const char *const approve_keys[] = {
    "title", "detail", "effects", "role", "approvers", "timeout", "default", NULL,
};

/* A string field of the options table, or def. */
static const char *
opt_string(lua_State *L, const char *key, const char *def, size_t max)
{
    const char *s;
    size_t len;

    lua_getfield(L, 1, key);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return def;
    }
    if (lua_type(L, -1) != LUA_TSTRING) {
        luaL_error(L, "approve: %s must be a string", key);
    }
    s = lua_tolstring(L, -1, &len);
    if (len > max || strlen(s) != len) {
        luaL_error(L, "approve: %s: at most %d bytes of text", key, (int)max);
    }
    lua_pop(L, 1); /* the options table still holds it */
    return s;
}

/* effects = { {"graph.disable_user", upn}, {"defender.isolate", id, "Full"} } as JSON;
 * pushed on the Lua stack (so that nothing leaks when a check raises). */
static const char *
opt_effects(lua_State *L)
{
    cJSON *arr = cJSON_CreateArray();
    char *text;
    lua_Integer n = 0;

    lua_getfield(L, 1, "effects");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        cJSON_Delete(arr);
        lua_pushstring(L, "[]");
        return lua_tostring(L, -1);
    }
    if (!lua_istable(L, -1) || (n = (lua_Integer)lua_rawlen(L, -1)) < 1 ||
        n > APPROVAL_EFFECTS_MAX) {
        cJSON_Delete(arr);
        luaL_error(L,
                   "approve: effects must be a list of 1 to %d calls such as "
                   "{ {\"graph.disable_user\", upn} }",
                   APPROVAL_EFFECTS_MAX);
    }
    for (lua_Integer i = 1; i <= n; i++) {
        cJSON *e = cJSON_CreateArray();
        lua_Integer m = 0;

        cJSON_AddItemToArray(arr, e);
        lua_rawgeti(L, -1, i);
        if (!lua_istable(L, -1) || (m = (lua_Integer)lua_rawlen(L, -1)) < 1 || m > 8) {
            cJSON_Delete(arr);
            luaL_error(L, "approve: effects[%d] must be {\"module.function\", args...}", (int)i);
        }
        for (lua_Integer k = 1; k <= m; k++) {
            lua_rawgeti(L, -1, k);
            if (lua_type(L, -1) == LUA_TSTRING && strlen(lua_tostring(L, -1)) < 1024) {
                cJSON_AddItemToArray(e, cJSON_CreateString(lua_tostring(L, -1)));
            } else if (k > 1 && lua_type(L, -1) == LUA_TNUMBER) {
                cJSON_AddItemToArray(e, cJSON_CreateNumber(lua_tonumber(L, -1)));
            } else {
                cJSON_Delete(arr);
                luaL_error(L, "approve: effects[%d][%d] must be %s", (int)i, (int)k,
                           k == 1 ? "the call's name" : "a string or a number");
            }
            lua_pop(L, 1);
        }
        if (strchr(cJSON_GetArrayItem(e, 0)->valuestring, '.') == NULL) {
            cJSON_Delete(arr);
            luaL_error(L, "approve: effects[%d][1] must be a call such as \"graph.disable_user\"",
                       (int)i);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    text = json_print(arr);
    cJSON_Delete(arr);
    lua_pushstring(L, text);
    free(text);
    return lua_tostring(L, -1);
}

/* approve{ title=, detail=, effects=, role="analyst", approvers=1, timeout="15m",
 * default="reject" }: park the run until people decide, or the timeout applies the
 * default. Returns {approved, decision, by, at, comment, timed_out, id}. */
static int
l_approve(lua_State *L)
{
    struct approve_args aa;
    struct effect_spec spec = { 0 };
    cJSON *req;
    char *text;
    int n;

    luaL_checktype(L, 1, LUA_TTABLE);
    if (lcheck_unknown_key(L, 1, approve_keys)) {
        return luaL_error(L, "approve: unknown field '%s'", lua_tostring(L, -1));
    }
    memset(&aa, 0, sizeof(aa));
    aa.title = opt_string(L, "title", NULL, APPROVAL_TITLE_MAX);
    if (aa.title == NULL || aa.title[0] == '\0') {
        return luaL_error(L, "approve: title is required");
    }
    aa.detail = opt_string(L, "detail", NULL, APPROVAL_DETAIL_MAX);
    aa.role = opt_string(L, "role", "analyst", 16);
    if (strcmp(aa.role, "analyst") != 0 && strcmp(aa.role, "admin") != 0 &&
        strcmp(aa.role, "engineer") != 0) {
        return luaL_error(L, "approve: role must be analyst, engineer or admin");
    }
    aa.deflt = opt_string(L, "default", "reject", 16);
    if (strcmp(aa.deflt, "reject") != 0 && strcmp(aa.deflt, "approve") != 0) {
        return luaL_error(L, "approve: default must be \"approve\" or \"reject\"");
    }
    lua_getfield(L, 1, "approvers");
    aa.approvers = lua_isnil(L, -1) ? 1 : (int)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    if (aa.approvers < 1 || aa.approvers > APPROVAL_APPROVERS_MAX) {
        return luaL_error(L, "approve: approvers must be 1 to %d", APPROVAL_APPROVERS_MAX);
    }
    lua_getfield(L, 1, "timeout");
    if (lua_isnil(L, -1)) {
        aa.timeout = 15 * 60;
    } else if (lua_type(L, -1) == LUA_TNUMBER) {
        aa.timeout = lua_tonumber(L, -1);
    } else if (lua_type(L, -1) != LUA_TSTRING ||
               util_parse_duration(lua_tostring(L, -1), &aa.timeout) == -1) {
        return luaL_error(L, "approve: timeout must be seconds or a duration such as \"15m\"");
    }
    lua_pop(L, 1);
    if (!(aa.timeout >= 1 && aa.timeout <= APPROVAL_TIMEOUT_MAX)) {
        return luaL_error(L, "approve: timeout must be 1 s to 30 days");
    }
    aa.effects = opt_effects(L); /* stays on the stack */
    req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "title", aa.title);
    if (aa.detail != NULL) {
        cJSON_AddStringToObject(req, "detail", aa.detail);
    }
    cJSON_AddItemToObject(req, "effects", cJSON_Parse(aa.effects));
    cJSON_AddStringToObject(req, "role", aa.role);
    cJSON_AddNumberToObject(req, "approvers", aa.approvers);
    cJSON_AddNumberToObject(req, "timeout", aa.timeout);
    cJSON_AddStringToObject(req, "default", aa.deflt);
    text = json_print(req);
    cJSON_Delete(req);
    lua_pushstring(L, text);
    free(text);
    spec.kind = "approve";
    spec.request = lua_tostring(L, -1);
    spec.open = approve_open;
    spec.start = approve_start;
    spec.cancel = approve_cancel;
    spec.arg = &aa;
    n = effect_run(L, &spec);
    /* Only a decision known at once comes back here (a replay); a parked run gets its
     * decision from op_finish, which also sets the allowed effects. */
    if (n >= 1 && lua_istable(L, -n)) {
        lua_getfield(L, -n, "approved");
        if (lua_toboolean(L, -1) && strcmp(aa.effects, "[]") != 0) {
            run_set_approved(run_from_lua(L), aa.effects);
        }
        lua_pop(L, 1);
    }
    return n;
}

void
approval_register(struct sandbox *sb)
{
    sandbox_add_func(sb, "approve", l_approve);
}

/* ---- decisions ---- */

static int
refuse(enum approval_refusal *refusal, enum approval_refusal why, char **errp, const char *msg)
{
    *refusal = why;
    return kg_err(errp, "%s", msg);
}

int
approval_decide(struct tenant *t, int64_t id, const char *user, const char *const *roles,
                size_t nroles, int approve, const char *comment, void (*done)(void *arg, int ok),
                void *arg, enum approval_refusal *refusal, char **errp)
{
    struct store_approval a;
    struct store_run run;
    struct store_vote *v = NULL;
    size_t nv = 0, yes = 0;
    int may = 0, found, rc = -1;
    int64_t now = util_now_ms();
    char *err = NULL;
    const char *state = NULL;

    found = store_approval_get(t->db, id, &a, &err);
    if (found != 1) {
        free(err);
        return refuse(refusal, found == 0 ? APPROVAL_NOT_FOUND : APPROVAL_UNAVAILABLE, errp,
                      found == 0 ? "no such object" : "the approval could not be read");
    }
    for (size_t i = 0; i < nroles; i++) {
        may |= strcmp(roles[i], a.role) == 0 || strcmp(roles[i], "admin") == 0 ||
               strcmp(roles[i], "operator") == 0;
    }
    if (!may) {
        rc = refuse(refusal, APPROVAL_FORBIDDEN, errp, "your role may not decide this approval");
        goto out;
    }
    if (a.requester == NULL && store_run_requester(t->db, a.run_id, &a.requester, &err) == -1) {
        free(err);
        rc = refuse(refusal, APPROVAL_UNAVAILABLE, errp, "the approval's run could not be read");
        goto out;
    }
    if (a.requester != NULL && strcmp(a.requester, user) == 0) {
        rc = refuse(refusal, APPROVAL_FORBIDDEN, errp,
                    "the person who started the run cannot decide its approval");
        goto out;
    }
    if (strcmp(a.state, "pending") == 0 && store_run_get(t->db, a.run_id, &run, NULL) == 1) {
        int over = strcmp(run.state, "done") == 0 || strcmp(run.state, "failed") == 0 ||
                   strcmp(run.state, "cancelled") == 0;

        store_run_free(&run);
        if (over && loop_write(t->db, NULL) == 0 &&
            store_approval_decide(t->db, id, "cancelled", now, NULL) == 1) {
            snprintf(a.state, sizeof(a.state), "cancelled");
        }
    }
    if (strcmp(a.state, "pending") == 0 && now >= a.deadline) {
        rc = refuse(refusal, APPROVAL_CONFLICT, errp, "the approval has expired");
        goto out;
    }
    if (strcmp(a.state, "pending") != 0) {
        char *msg = xasprintf("the approval is %s already", a.state);

        rc = refuse(refusal, APPROVAL_CONFLICT, errp, msg);
        free(msg);
        goto out;
    }
    if (loop_write(t->db, &err) == -1) {
        free(err);
        rc = refuse(refusal, APPROVAL_UNAVAILABLE, errp, "the tenant database cannot be written");
        goto out;
    }
    if (store_approval_vote(t->db, id, user, approve ? "approve" : "reject", comment, now, &err) ==
        -1) {
        *refusal = APPROVAL_CONFLICT;
        kg_err(errp, "%s", err);
        free(err);
        goto out;
    }
    if (store_approval_votes(t->db, id, &v, &nv, NULL) == 0) {
        for (size_t i = 0; i < nv; i++) {
            yes += strcmp(v[i].decision, "approve") == 0;
        }
    }
    store_votes_free(v, nv);
    if (!approve) {
        state = "rejected";
    } else if (yes >= (size_t)a.approvers) {
        state = "approved";
    }
    if (state != NULL && store_approval_decide(t->db, id, state, now, NULL) == 1) {
        struct approval_op *op = op_find(t, id);
        struct store_approval d;

        if (op != NULL && store_approval_get(t->db, id, &d, NULL) == 1) {
            op_finish(op, &d);
            store_approval_free(&d);
        }
    }
    loop_after_commit(t->db, done, arg);
    rc = 0;
out:
    store_approval_free(&a);
    return rc;
}
