/* builtin.c: the built-in playbook globals. sleep, now and log are effects: journaled, so
 * that a replay sees the same clock, sleeps on to the wake time first set, and logs a
 * line once. */
#include "engine/builtin.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "engine/kagari.h"
#include "engine/library.h"
#include "engine/ljson.h"
#include "engine/loop.h"
#include "engine/playbook.h"
#include "engine/recent.h"
#include "engine/sandbox.h"
#include "engine/state.h"

#define BUILTIN_LOG_MAX 4096       /* bytes of one log line from a playbook */
#define BUILTIN_SLEEP_MAX 31622400 /* seconds: one year */

/* ---- sleep ---- */

struct sleep_op {
    struct effect *ef;
    struct event *timer;
    int64_t wake_ms;
    struct sleep_op *prev, *next;
};

static struct sleep_op *sleeping; /* every armed sleep, for a wall-clock step */

/* The wall clock stepped: every sleep looks at its wake time again at once. */
static void
sleep_clock_stepped(void *arg)
{
    struct timeval now = { 0, 0 };

    (void)arg;
    for (struct sleep_op *s = sleeping; s != NULL; s = s->next) {
        if (evtimer_pending(s->timer, NULL)) {
            evtimer_add(s->timer, &now);
        }
    }
}

static void
sleep_arm(struct sleep_op *s)
{
    int64_t left = s->wake_ms - util_now_ms();
    struct timeval tv;

    if (left < 0) {
        left = 0;
    }
    tv.tv_sec = (time_t)(left / 1000);
    tv.tv_usec = (suseconds_t)((left % 1000) * 1000);
    evtimer_add(s->timer, &tv);
}

static void
sleep_cancel(void *op)
{
    struct sleep_op *s = op;

    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else if (sleeping == s) {
        sleeping = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    event_free(s->timer);
    free(s);
}

static void
sleep_fire(evutil_socket_t fd, short what, void *arg)
{
    struct sleep_op *s = arg;
    struct effect *ef = s->ef;

    (void)fd;
    (void)what;
    if (util_now_ms() < s->wake_ms) { /* woken early by clock granularity: wait the rest */
        sleep_arm(s);
        return;
    }
    sleep_cancel(s);
    effect_done(ef, 1, "true");
}

static void
sleep_start(void *op)
{
    sleep_arm(op);
}

/* The wake time counts from the entry's first start: after a restart the sleep goes on
 * to the time first set, not from the start again. The run's deadline is the driver's. */
static void *
sleep_open(struct effect *ef, void *arg)
{
    struct sleep_op *s = xcalloc(1, sizeof(*s));

    s->ef = ef;
    s->wake_ms = effect_started_ms(ef) + (int64_t)(*(lua_Number *)arg * 1000);
    s->timer = evtimer_new(loop_base(), sleep_fire, s);
    s->next = sleeping;
    if (sleeping != NULL) {
        sleeping->prev = s;
    }
    sleeping = s;
    loop_on_clock_step(sleep_clock_stepped, NULL);
    return s;
}

/* sleep(seconds): park the run; it costs a timer, no CPU. */
int
builtin_sleep(lua_State *L)
{
    lua_Number secs = luaL_checknumber(L, 1);
    struct effect_spec spec = { 0 };
    char req[64];

    luaL_argcheck(L, secs >= 0 && secs <= BUILTIN_SLEEP_MAX, 1,
                  "seconds must be from 0 to one year");
    snprintf(req, sizeof(req), "{\"seconds\":%.17g}", (double)secs);
    spec.kind = "sleep";
    spec.request = req;
    spec.open = sleep_open;
    spec.start = sleep_start;
    spec.cancel = sleep_cancel;
    spec.arg = &secs;
    return effect_run(L, &spec);
}

/* ---- now ---- */

static void *
now_open(struct effect *ef, void *arg)
{
    char buf[32];

    (void)arg;
    snprintf(buf, sizeof(buf), "%.3f", (double)util_now_ms() / 1000.0);
    effect_done(ef, 1, buf);
    return NULL;
}

/* now(): seconds since the epoch (milliseconds as the fraction), journaled so that a
 * replay sees the same clock. */
static int
l_now(lua_State *L)
{
    struct effect_spec spec = { 0 };

    spec.kind = "now";
    spec.request = "{}";
    spec.open = now_open;
    return effect_run(L, &spec);
}

/* ---- log ---- */

struct log_line {
    enum log_level level;
    const char *msg;
    size_t len;
};

static void *
log_open(struct effect *ef, void *arg)
{
    const struct log_line *ll = arg;
    struct run *r = effect_owner(ef);
    char *m = xstrndup(ll->msg, ll->len);

    log_msg(ll->level, "playbook.log tenant=%s run=%lld playbook=%s msg=%s",
            tenant_id(run_tenant(r)), (long long)run_id(r), run_playbook_name(r), log_quote(m));
    free(m);
    effect_done(ef, 1, "true");
    return NULL;
}

/* The log functions. Text is gathered in Lua buffers (collected if anything raises: a
 * replay that diverges raises from the driver), so nothing leaks. */
static int
log_at(lua_State *L, const char *level, enum log_level lv)
{
    struct effect_spec spec = { 0 };
    struct log_line ll;
    luaL_Buffer lb;
    struct buf req;
    int n = lua_gettop(L);

    if (run_from_lua(L) == NULL) {
        return luaL_error(L, "log.%s: only inside a playbook run", level);
    }
    luaL_buffinit(L, &lb);
    for (int i = 1; i <= n; i++) {
        if (i > 1) {
            luaL_addchar(&lb, ' ');
        }
        sandbox_tolstring(L, i); /* no addresses: a replay logs the same */
        luaL_addvalue(&lb);
        if (luaL_bufflen(&lb) >= BUILTIN_LOG_MAX) {
            break;
        }
    }
    luaL_pushresult(&lb);
    ll.level = lv;
    ll.msg = lua_tolstring(L, -1, &ll.len);
    if (ll.len > BUILTIN_LOG_MAX) {
        /* Cut on a character boundary: never half a UTF-8 sequence. */
        ll.len = BUILTIN_LOG_MAX;
        while (ll.len > 0 && ((unsigned char)ll.msg[ll.len] & 0xc0) == 0x80) {
            ll.len--;
        }
    }
    buf_init(&req, 0);
    (void)!buf_printf(&req, "{\"level\":\"%s\",\"msg\":", level);
    (void)!buf_json_string(&req, ll.msg, ll.len);
    (void)!buf_puts(&req, "}");
    lua_pushlstring(L, req.data, req.len);
    buf_free(&req);
    spec.kind = "log";
    spec.request = lua_tostring(L, -1);
    spec.flags = EFFECT_ENGINE;
    spec.open = log_open;
    spec.arg = &ll;
    effect_run(L, &spec);
    return 0;
}

static int
l_log_debug(lua_State *L)
{
    return log_at(L, "debug", KG_LOG_DEBUG);
}

static int
l_log_info(lua_State *L)
{
    return log_at(L, "info", KG_LOG_INFO);
}

static int
l_log_warn(lua_State *L)
{
    return log_at(L, "warn", KG_LOG_WARN);
}

static int
l_log_error(lua_State *L)
{
    return log_at(L, "error", KG_LOG_ERR);
}

static int
luaopen_kagari_log(lua_State *L)
{
    static const luaL_Reg log_funcs[] = {
        { "debug", l_log_debug }, { "info", l_log_info }, { "warn", l_log_warn },
        { "error", l_log_error }, { NULL, NULL },
    };

    luaL_newlib(L, log_funcs);
    return 1;
}

/* ---- the alert's methods ---- */

/* alert:observable(type) -> the first observable value of that type, or nothing. */
static int
l_alert_observable(lua_State *L)
{
    const char *type = luaL_checkstring(L, 2);

    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_getfield(L, 1, "observables") != LUA_TTABLE) {
        return 0;
    }
    for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TTABLE; i++) {
        lua_getfield(L, -1, "type");
        if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), type) == 0) {
            lua_getfield(L, -2, "value");
            return 1;
        }
        lua_pop(L, 2);
    }
    return 0;
}

/* alert:values([type]) -> a list of the values of that type (every observable table
 * when no type is given). */
static int
l_alert_values(lua_State *L)
{
    const char *type = luaL_optstring(L, 2, NULL);
    lua_Integer n = 0;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_newtable(L);
    if (lua_getfield(L, 1, "observables") != LUA_TTABLE) {
        lua_pop(L, 1);
        return 1;
    }
    for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TTABLE; i++) {
        if (type == NULL) {
            lua_rawseti(L, -3, ++n);
            continue;
        }
        lua_getfield(L, -1, "type");
        if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), type) == 0) {
            lua_getfield(L, -2, "value");
            lua_rawseti(L, -5, ++n);
        }
        lua_pop(L, 2);
    }
    lua_pop(L, 2);
    return 1;
}

void
builtin_register(struct sandbox *sb)
{
    static const luaL_Reg alert_methods[] = {
        { "observable", l_alert_observable },
        { "values", l_alert_values },
        { NULL, NULL },
    };
    lua_State *L = sandbox_state(sb);

    sandbox_add_func(sb, "playbook", playbook_lua_define);
    sandbox_add_func(sb, "sleep", builtin_sleep);
    sandbox_add_func(sb, "now", l_now);
    sandbox_add_func(sb, "require", library_lua_unbound);
    sandbox_add_lib(sb, "log", luaopen_kagari_log);
    sandbox_add_lib(sb, "json", luaopen_kagari_json);
    sandbox_add_lib(sb, "state", luaopen_kagari_state);
    sandbox_add_lib(sb, "alerts", luaopen_kagari_alerts);
    luaL_newmetatable(L, "kagari.alert");
    luaL_newlib(L, alert_methods);
    lua_setfield(L, -2, "__index");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}
