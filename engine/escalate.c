/* escalate.c: urgent escalation with acknowledgement.
 *
 * escalate{ level =, reason =, subject = } is Lua (a trusted helper) over three steps,
 * so that everything it does is a journaled effect a replay walks through:
 *   escalate.open  records the escalation (a row in the tenant database, the chain as
 *                  configured then) and returns its id, contacts and link expiry;
 *   notify.*       reaches each contact on each of its channels (email, webhooks), with
 *                  the escalation template and the contact's own acknowledge link;
 *   escalate.wait  waits the contact's wait, or less when someone acknowledges; its
 *                  wake time counts from its first start, so a restart resumes it.
 * A restart mid-chain replays the delivered notifications from the journal (nothing is
 * sent again) and goes on waiting where it was.
 *
 * Acknowledging is not a decision on any action. It comes from a signed one-time link
 * (GET /ack/... shows a confirmation page and changes nothing, because mail scanners
 * and link previews follow links; POST acknowledges), the people's API (POST
 * /api/v1/tenants/<t>/escalations/<id>/ack, engine/api_escalate.c), both through
 * escalate_ack in the daemon's loop, or the CLI (`kagari escalation ack`), which writes the
 * tenant database directly: waits poll their row every second. The escalation's course
 * (started, each contact notified, exhausted) goes to the audit table of control.db.
 * A link is HMAC-SHA256 over (tenant, escalation, contact, expiry) with a key of its
 * own (escalation.key_file), compared in constant time; once the escalation is
 * acknowledged every link to it is refused. */
#include "engine/escalate.h"

#include <lauxlib.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "engine/http.h"
#include "engine/intake.h"
#include "engine/kagari.h"
#include "engine/loop.h"
#include "engine/tenant.h"

#define ESC_KEY_LEN 32
#define ESC_POLL_MS 1000
#define ESC_TEXT_MAX 1024
#define ESC_BY_MAX 128

/* ---- settings ---- */

struct escalate_conf {
    char *base_url; /* how people reach the intake listener: "https://soc.example.jp:8443" */
    char *key_file; /* the link key; default escalation.key next to the data */
    double link_ttl;
};

static const struct config_field escalate_fields[] = {
    { "base_url", CONFIG_URL, offsetof(struct escalate_conf, base_url), 0, 0, NULL, 0 },
    { "key_file", CONFIG_PATH, offsetof(struct escalate_conf, key_file), 0, 0, NULL, 0 },
    { "link_ttl", CONFIG_DURATION, offsetof(struct escalate_conf, link_ttl), 60, 2592000, NULL, 0 },
    CONFIG_FIELDS_END,
};

static int
escalate_check(void *p, char **errp)
{
    struct escalate_conf *c = p;

    if (c->link_ttl == 0) {
        c->link_ttl = 86400;
    }
    if (c->link_ttl > 2592000) {
        return kg_err(errp, "link_ttl: at most 30 days");
    }
    return 0;
}

const struct config_section escalate_section = {
    "escalation", escalate_fields, sizeof(struct escalate_conf), escalate_check, NULL,
};

void
escalate_config_init(void)
{
    config_add_global_section(&escalate_section);
}

/* ---- process state ---- */

struct esc_wait {
    struct effect *ef;
    struct tenant *t;
    int64_t id;
    int contact;
    int last;
    int64_t wake_ms;
    struct event *timer;
    struct esc_wait *next;
};

static struct {
    unsigned char key[ESC_KEY_LEN];
    int have_key;
    char *base_url;
    double link_ttl;
    struct esc_wait *waits;
    unsigned long long started, acked, exhausted, notified_contacts, links_refused;
    double tta_sum; /* seconds */
    unsigned long long tta_count;
} esc;

/* ---- the customer's history ---- */

/* An escalation event in the audit table of control.db, for tenant t's history: after
 * the commit of what the event changed (never for a change rolled back). detail is JSON
 * text (copied). */
static void
esc_audit(struct tenant *t, const char *action, int64_t id, const char *detail)
{
    char target[48];

    snprintf(target, sizeof(target), "escalation:%lld", (long long)id);
    tenant_audit_committed(t, "engine", action, target, "ok", detail);
}

/* ---- links ---- */

static void
link_mac(const char *tenant, int64_t id, int contact, int64_t expires, char out[65])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    char msg[256];
    int n = snprintf(msg, sizeof(msg), "ack|%s|%lld|%d|%lld", tenant, (long long)id, contact,
                     (long long)expires);

    HMAC(EVP_sha256(), esc.key, ESC_KEY_LEN, (const unsigned char *)msg, (size_t)n, mac, &len);
    util_hex(mac, 32, out);
}

/* link(id, contact, expires) -> URL, or nil without escalation.base_url (or outside the
 * daemon: a playbook test). Not an effect:
 * the same arguments always give the same link. */
static int
l_escalate_link(lua_State *L)
{
    struct run *r = run_from_lua(L);
    int64_t id = (int64_t)luaL_checkinteger(L, 1);
    int contact = (int)luaL_checkinteger(L, 2);
    int64_t expires = (int64_t)luaL_checkinteger(L, 3);
    char mac[65];

    if (r == NULL || esc.base_url == NULL || !esc.have_key) {
        lua_pushnil(L); /* no escalation.base_url: acknowledging is by CLI only */
        return 1;
    }
    link_mac(tenant_id(run_tenant(r)), id, contact, expires, mac);
    lua_pushfstring(L, "%s/ack/%s/%I/%d/%I/%s", esc.base_url, tenant_id(run_tenant(r)),
                    (lua_Integer)id, contact, (lua_Integer)expires, mac);
    return 1;
}

/* ---- escalate.open ---- */

struct open_args {
    const char *level, *reason, *subject;
    int ncontacts;
    const char *chain_json;
    int rounds;
};

static void *
open_open(struct effect *ef, void *arg)
{
    struct open_args *a = arg;
    struct run *r = effect_owner(ef);
    struct tenant *t = run_tenant(r);
    struct store_esc e = { 0 };
    int64_t id = 0, now = util_now_ms();
    char *err = NULL, *out;

    if (a->ncontacts == 0) { /* journaled too: a playbook test can answer it */
        effect_done(ef, 0,
                    "escalate: this tenant has no contact chain (tenants.<id>.notify.chain)");
        return NULL;
    }
    e.run_id = run_id(r);
    e.level = (char *)a->level;
    e.reason = (char *)a->reason;
    e.subject = (char *)a->subject;
    e.contacts = a->ncontacts;
    e.created_ms = now;
    if (loop_write(t->db, &err) == -1 || store_esc_insert(t->db, &e, &id, &err) == -1) {
        out = xasprintf("escalate: cannot record the escalation: %s", err ? err : "?");
        free(err);
        effect_done(ef, 0, out);
        free(out);
        return NULL;
    }
    esc.started++;
    {
        cJSON *d = cJSON_CreateObject();
        char *text;

        cJSON_AddNumberToObject(d, "run", (double)run_id(r));
        cJSON_AddStringToObject(d, "level", a->level);
        cJSON_AddStringToObject(d, "subject", a->subject);
        cJSON_AddNumberToObject(d, "contacts", a->ncontacts);
        text = json_print(d);
        cJSON_Delete(d);
        esc_audit(t, "escalation.started", id, text);
        free(text);
    }
    log_warn("escalate.started tenant=%s run=%lld escalation=%lld level=%s contacts=%d",
             tenant_id(t), (long long)run_id(r), (long long)id, log_quote(a->level), a->ncontacts);
    out = xasprintf("{\"id\":%lld,\"expires\":%lld,\"rounds\":%d,\"contacts\":%s}", (long long)id,
                    (long long)(now / 1000 + (int64_t)esc.link_ttl), a->rounds, a->chain_json);
    effect_done(ef, 1, out);
    free(out);
    return NULL;
}

/* Push field key of the table at idx as a string (a number is converted): at most
 * ESC_TEXT_MAX bytes, no control characters but in reason (line breaks allowed there). */
static const char *
text_field(lua_State *L, int idx, const char *key, int multiline)
{
    const char *s;
    size_t n;

    lua_getfield(L, idx, key);
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER) {
        luaL_error(L, "escalate: %s: expected a string", key);
    }
    s = lua_tolstring(L, -1, &n);
    if (n == 0 || n > ESC_TEXT_MAX || strlen(s) != n) {
        luaL_error(L, "escalate: %s: 1 to %d bytes, no NUL", key, ESC_TEXT_MAX);
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if ((c < 0x20 && !(multiline && (c == '\n' || c == '\r' || c == '\t'))) || c == 0x7f) {
            luaL_error(L, "escalate: %s: control characters are not allowed", key);
        }
    }
    return s;
}

/* open(opts, chain) -> { id =, expires =, rounds =, contacts = {...} } | nil, err.
 * opts is checked here; chain is notify.chain(). */
static int
l_escalate_open(lua_State *L)
{
    static const char *const keys[] = { "level", "reason", "subject", NULL };
    struct open_args a = { 0 };
    struct effect_spec es = { 0 };
    struct buf req;

    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    if (lcheck_unknown_key(L, 1, keys)) {
        return luaL_error(L, "escalate: unknown field %s", lua_tostring(L, -1));
    }
    a.level = text_field(L, 1, "level", 0);
    a.reason = text_field(L, 1, "reason", 1);
    a.subject = text_field(L, 1, "subject", 0);
    lua_getfield(L, 2, "rounds");
    a.rounds = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 1;
    lua_pop(L, 1);
    a.ncontacts = (int)lua_rawlen(L, 2);
    /* The chain as JSON (json.encode of its contacts, in order). */
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "json");
    lua_getfield(L, -1, "encode");
    lua_newtable(L);
    for (int i = 1; i <= a.ncontacts; i++) {
        lua_rawgeti(L, 2, i);
        lua_rawseti(L, -2, i);
    }
    lua_call(L, 1, 1);
    a.chain_json = lua_tostring(L, -1); /* kept on the stack */
    buf_init(&req, 0);
    (void)!buf_puts(&req, "{\"level\":");
    (void)!buf_json_string(&req, a.level, strlen(a.level));
    (void)!buf_puts(&req, ",\"reason\":");
    (void)!buf_json_string(&req, a.reason, strlen(a.reason));
    (void)!buf_puts(&req, ",\"subject\":");
    (void)!buf_json_string(&req, a.subject, strlen(a.subject));
    /* The chain is not part of the request: it is recorded in the result, so that a
     * restart after the operator changed the chain resumes with the one first used
     * rather than diverge. */
    (void)!buf_puts(&req, "}");
    lua_pushlstring(L, req.data, req.len);
    buf_free(&req);
    es.kind = "escalate.open";
    es.request = lua_tostring(L, -1);
    es.flags = 0; /* local: the row and the journal entry share one transaction */
    es.open = open_open;
    es.arg = &a;
    return effect_run(L, &es);
}

/* ---- escalate.wait ---- */

struct wait_args {
    int64_t id;
    int contact, last;
    double wait;
};

static void
wait_unlink(struct esc_wait *w)
{
    for (struct esc_wait **p = &esc.waits; *p != NULL; p = &(*p)->next) {
        if (*p == w) {
            *p = w->next;
            break;
        }
    }
}

static void
wait_free(struct esc_wait *w)
{
    wait_unlink(w);
    if (w->timer != NULL) {
        event_free(w->timer);
    }
    free(w);
}

static void
wait_cancel(void *op)
{
    wait_free(op);
}

/* The acknowledged result: {"acked":true,"id","by","via","at","tta_ms","contact"}. */
static char *
acked_json(const struct store_esc *e, int contact)
{
    struct buf b;

    buf_init(&b, 0);
    (void)!buf_printf(&b, "{\"acked\":true,\"id\":%lld,\"by\":", (long long)e->id);
    (void)!buf_json_string(&b, e->acked_by ? e->acked_by : "",
                           e->acked_by ? strlen(e->acked_by) : 0);
    (void)!buf_puts(&b, ",\"via\":");
    (void)!buf_json_string(&b, e->acked_via ? e->acked_via : "",
                           e->acked_via ? strlen(e->acked_via) : 0);
    (void)!buf_printf(&b, ",\"at\":%lld,\"tta_ms\":%lld,\"contact\":%d}", (long long)e->acked_ms,
                      (long long)(e->acked_ms - e->created_ms), contact);
    return buf_take(&b);
}

/* Count an acknowledgement and its time to acknowledge. */
static void
count_ack(const struct store_esc *e)
{
    esc.acked++;
    esc.tta_sum += (double)(e->acked_ms - e->created_ms) / 1000.0;
    esc.tta_count++;
}

/* Finish w if its escalation is acknowledged (1), or when its wait is over (1: the
 * contact counts as reached, the chain moves on; exhausted after the last). 0: still
 * waiting. */
static int
wait_check(struct esc_wait *w)
{
    struct store_esc e;
    char *err = NULL, *out;
    struct effect *ef = w->ef;
    int rc = store_esc_get(w->t->db, w->id, &e, &err);

    if (rc == 1 && e.acked_ms > 0) {
        count_ack(&e); /* by link or CLI: each escalation's ack ends exactly one wait */
        log_warn("escalate.acked tenant=%s escalation=%lld via=%s by=%s tta_ms=%lld",
                 tenant_id(w->t), (long long)w->id, e.acked_via ? e.acked_via : "?",
                 log_quote(e.acked_by ? e.acked_by : ""), (long long)(e.acked_ms - e.created_ms));
        out = acked_json(&e, w->contact);
        store_esc_free(&e);
        wait_free(w);
        effect_done(ef, 1, out);
        free(out);
        return 1;
    }
    if (rc == 1) {
        store_esc_free(&e);
    }
    free(err);
    err = NULL;
    if (util_now_ms() < w->wake_ms) {
        return 0;
    }
    if (loop_write(w->t->db, &err) == 0 &&
        store_esc_reached(w->t->db, w->id, w->contact, util_now_ms(), w->last, &err) >= 0) {
        esc.notified_contacts++;
        if (w->last) {
            char detail[96];

            snprintf(detail, sizeof(detail), "{\"contacts_reached\":%d}", w->contact);
            esc_audit(w->t, "escalation.exhausted", w->id, detail);
            esc.exhausted++;
            log_err("escalate.exhausted tenant=%s escalation=%lld: nobody acknowledged",
                    tenant_id(w->t), (long long)w->id);
        }
    } else {
        log_warn("escalate.update_failed escalation=%lld error=%s", (long long)w->id,
                 log_quote(err ? err : "?"));
    }
    free(err);
    out = xasprintf("{\"acked\":false,\"id\":%lld,\"contact\":%d%s}", (long long)w->id, w->contact,
                    w->last ? ",\"exhausted\":true" : "");
    wait_free(w);
    effect_done(ef, 1, out);
    free(out);
    return 1;
}

static void
wait_arm(struct esc_wait *w)
{
    int64_t left = w->wake_ms - util_now_ms();
    struct timeval tv;

    if (left > ESC_POLL_MS) {
        left = ESC_POLL_MS;
    }
    if (left < 0) {
        left = 0;
    }
    tv.tv_sec = (time_t)(left / 1000);
    tv.tv_usec = (suseconds_t)((left % 1000) * 1000);
    evtimer_add(w->timer, &tv);
}

static void
wait_fire(evutil_socket_t fd, short what, void *arg)
{
    struct esc_wait *w = arg;

    (void)fd;
    (void)what;
    if (!wait_check(w)) {
        wait_arm(w);
    }
}

static void
wait_start(void *op)
{
    struct esc_wait *w = op;

    if (!wait_check(w)) {
        wait_arm(w);
    }
}

/* The wall clock stepped: every armed wait is looked at again at once. */
static void
wait_clock_stepped(void *arg)
{
    struct timeval now = { 0, 0 };

    (void)arg;
    for (struct esc_wait *w = esc.waits; w != NULL; w = w->next) {
        if (evtimer_pending(w->timer, NULL)) {
            evtimer_add(w->timer, &now);
        }
    }
}

static void *
wait_open(struct effect *ef, void *arg)
{
    struct wait_args *a = arg;
    struct esc_wait *w = xcalloc(1, sizeof(*w));

    w->ef = ef;
    w->t = run_tenant(effect_owner(ef));
    w->id = a->id;
    w->contact = a->contact;
    w->last = a->last;
    w->wake_ms = effect_started_ms(ef) + (int64_t)(a->wait * 1000);
    if (!effect_in_doubt(ef)) {
        /* The contact's notifications are done (each journaled): its wait begins. Not
         * again when a restart reopens the wait. */
        char detail[128];

        snprintf(detail, sizeof(detail), "{\"contact\":%d,\"wait_s\":%.0f,\"last\":%s}", a->contact,
                 a->wait, a->last ? "true" : "false");
        esc_audit(w->t, "escalation.notified", a->id, detail);
    }
    w->timer = evtimer_new(loop_base(), wait_fire, w);
    w->next = esc.waits;
    esc.waits = w;
    loop_on_clock_step(wait_clock_stepped, NULL);
    return w;
}

/* wait(id, contact, seconds, last) -> { acked = true, by =, via =, at =, tta_ms = } or
 * { acked = false[, exhausted = true] }. */
static int
l_escalate_wait(lua_State *L)
{
    struct wait_args a;
    struct effect_spec es = { 0 };

    a.id = (int64_t)luaL_checkinteger(L, 1);
    a.contact = (int)luaL_checkinteger(L, 2);
    a.wait = luaL_checknumber(L, 3);
    a.last = lua_toboolean(L, 4);
    lua_pushfstring(L, "{\"id\":%I,\"contact\":%d,\"wait\":%f,\"last\":%s}", (lua_Integer)a.id,
                    a.contact, a.wait, a.last ? "true" : "false");
    es.kind = "escalate.wait";
    es.request = lua_tostring(L, -1);
    es.flags = 0;
    es.open = wait_open;
    es.start = wait_start;
    es.cancel = wait_cancel;
    es.arg = &a;
    return effect_run(L, &es);
}

/* The notify module for the helper (registered by the notify connector): the module
 * playbooks see, for the deliveries, and the module's own functions for what is not a
 * delivery (chain, template). They are the same table, except in a playbook test, which
 * wraps the module to record calls and keeps the real one as "_G.notify": there the
 * chain and the templates are not calls the test would have to answer. */
static int
l_escalate_notify(lua_State *L)
{
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "notify");
    if (!lua_istable(L, -1)) {
        return luaL_error(L, "escalate: the notify module is not available");
    }
    lua_getfield(L, -2, "_G.notify");
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
    }
    return 2;
}

/* The chain walk. Trusted text, loaded with an empty _ENV: it reaches nothing but its
 * arguments. A delivery that fails (nil, err) is journaled and the walk goes on: the
 * wait still applies and the next contact follows. */
static const char escalate_lua[] =
    "local open, wait, link, getnotify = ...\n"
    "return function(opts)\n"
    "  local notify, own = getnotify()\n"
    "  local e, err = open(opts, own.chain())\n"
    "  if e == nil then return nil, err end\n"
    "  local n = #e.contacts\n"
    "  for round = 1, e.rounds do\n"
    "    for i = 1, n do\n"
    "      local c = e.contacts[i]\n"
    "      local url = link(e.id, i, e.expires)\n"
    "      local vars = { subject = opts.subject, level = opts.level, reason = opts.reason,\n"
    "                     link = url or ('(kagari escalation ack ' .. e.id .. ')'),\n"
    "                     contact = c.name }\n"
    "      local subj, body = own.template('escalation', vars, c.lang)\n"
    "      if c.email then\n"
    "        notify.email{ to = c.email, subject = subj, body = body, lang = c.lang }\n"
    "      end\n"
    "      local hooks = c.webhooks or {}\n"
    "      for k = 1, #hooks do\n"
    "        local w = hooks[k]\n"
    "        if w.kind == 'webhook' then\n"
    "          notify.webhook{ to = w.to, title = subj, text = body, link = url,\n"
    "                          data = { escalation = e.id, contact = c.name,\n"
    "                                   level = opts.level } }\n"
    "        else\n"
    "          notify[w.kind]{ to = w.to, title = subj, text = body, link = url }\n"
    "        end\n"
    "      end\n"
    "      local st = wait(e.id, i, c.wait, round == e.rounds and i == n)\n"
    "      if st.acked then return st end\n"
    "    end\n"
    "  end\n"
    "  return { acked = false, exhausted = true, id = e.id }\n"
    "end\n";

static const char escalate_key_helper = 0;

static int
escalate_k(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    return lua_gettop(L) - 1;
}

/* escalate{ level =, reason =, subject = }: the helper, called with a continuation. */
static int
l_escalate(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    if (run_from_lua(L) == NULL) {
        return luaL_error(L, "escalate: only inside a playbook run");
    }
    lua_rawgetp(L, LUA_REGISTRYINDEX, &escalate_key_helper);
    lua_pushvalue(L, 1);
    lua_callk(L, 1, LUA_MULTRET, 0, escalate_k);
    return escalate_k(L, LUA_OK, 0);
}

static int
l_escalate_setup(lua_State *L)
{
    if (luaL_loadbufferx(L, escalate_lua, sizeof(escalate_lua) - 1, "=escalate", "t") != LUA_OK) {
        return lua_error(L);
    }
    lua_newtable(L); /* its _ENV: empty */
    lua_setupvalue(L, -2, 1);
    lua_pushcfunction(L, l_escalate_open);
    lua_pushcfunction(L, l_escalate_wait);
    lua_pushcfunction(L, l_escalate_link);
    lua_pushcfunction(L, l_escalate_notify);
    lua_call(L, 4, 1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &escalate_key_helper);
    return 0;
}

void
escalate_register(struct sandbox *sb)
{
    lua_State *L = sandbox_state(sb);

    lua_pushcfunction(L, l_escalate_setup);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        log_err("escalate.setup_failed error=%s", log_quote(lua_tostring(L, -1)));
        lua_pop(L, 1);
        return;
    }
    sandbox_add_func(sb, "escalate", l_escalate);
}

/* ---- acknowledging ---- */

int
escalate_ack_db(struct store_tenant *db, int64_t id, const char *by, const char *via, char **errp)
{
    struct store_esc e;
    int rc = store_esc_get(db, id, &e, errp);

    if (rc != 1) {
        return rc == 0 ? kg_err(errp, "no escalation %lld", (long long)id) : -1;
    }
    store_esc_free(&e);
    if (store_tx_begin(db, errp) == -1) {
        return -1;
    }
    rc = store_esc_ack(db, id, by, via, util_now_ms(), errp);
    if (rc == -1) {
        store_tx_rollback(db);
        return -1;
    }
    if (store_tx_commit(db, errp) == -1) {
        return -1;
    }
    return rc;
}

/* HTML-escape s into b. */
static void
html(struct buf *b, const char *s)
{
    for (; s != NULL && *s != '\0'; s++) {
        switch (*s) {
        case '<':
            (void)!buf_puts(b, "&lt;");
            break;
        case '>':
            (void)!buf_puts(b, "&gt;");
            break;
        case '&':
            (void)!buf_puts(b, "&amp;");
            break;
        case '"':
            (void)!buf_puts(b, "&quot;");
            break;
        case '\'':
            (void)!buf_puts(b, "&#39;");
            break;
        default:
            (void)!buf_append(b, s, 1);
        }
    }
}

static void
page(struct http_request *req, int status, const char *title, const char *text,
     const struct store_esc *e, const char *form_action)
{
    struct buf b;

    buf_init(&b, 0);
    (void)!buf_puts(&b, "<!doctype html><html lang=\"ja\"><head><meta charset=\"utf-8\">"
                        "<meta name=\"robots\" content=\"noindex\"><title>");
    html(&b, title);
    (void)!buf_puts(&b, "</title></head><body><h1>");
    html(&b, title);
    (void)!buf_puts(&b, "</h1><p>");
    html(&b, text);
    (void)!buf_puts(&b, "</p>");
    if (e != NULL) {
        (void)!buf_puts(&b, "<dl><dt>件名 / Subject</dt><dd>");
        html(&b, e->subject);
        (void)!buf_puts(&b, "</dd><dt>重要度 / Level</dt><dd>");
        html(&b, e->level);
        (void)!buf_puts(&b, "</dd><dt>理由 / Reason</dt><dd>");
        html(&b, e->reason);
        (void)!buf_puts(&b, "</dd></dl>");
    }
    if (form_action != NULL) {
        (void)!buf_puts(&b, "<form method=\"post\" action=\"");
        html(&b, form_action);
        (void)!buf_puts(&b, "\"><label>お名前 / Your name <input name=\"by\" maxlength=\"128\">"
                            "</label> <button type=\"submit\">受領を登録 / Acknowledge</button>"
                            "</form><p>受領の登録は対応の承認ではありません。 / Acknowledging "
                            "approves no action.</p>");
    }
    (void)!buf_puts(&b, "</body></html>\n");
    http_reply_header(req, "Cache-Control", "no-store");
    http_reply_header(req, "X-Frame-Options", "DENY");
    http_reply_header(req, "Referrer-Policy", "no-referrer");
    http_reply_header(req, "X-Content-Type-Options", "nosniff");
    http_reply_header(req, "Content-Security-Policy",
                      "default-src 'none'; form-action 'self'; frame-ancestors 'none'");
    http_reply(req, status, "text/html; charset=utf-8", b.data, b.len);
    buf_free(&b);
}

struct ack_pending {
    struct tenant *t;
    int64_t id;
    void (*done)(void *arg, int ok);
    void *arg;
};

/* After the commit of an acknowledgement: the caller answers, then the waits on it end at
 * once (the chain stops). */
static void
ack_committed(void *arg, int ok)
{
    struct ack_pending *p = arg;

    p->done(p->arg, ok);
    if (ok) {
        for (struct esc_wait *w = esc.waits, *next; w != NULL; w = next) {
            next = w->next;
            if (w->t == p->t && w->id == p->id) {
                (void)wait_check(w);
            }
        }
    }
    free(p);
}

int
escalate_ack(struct tenant *t, int64_t id, const char *by, const char *via,
             void (*done)(void *arg, int ok), void *arg, char **errp)
{
    struct ack_pending *p;
    int rc;

    if (loop_write(t->db, errp) == -1 ||
        (rc = store_esc_ack(t->db, id, by, via, util_now_ms(), errp)) == -1) {
        return -1;
    }
    if (rc == 0) {
        return 0;
    }
    log_info("escalate.ack tenant=%s escalation=%lld via=%s by=%s", t->id, (long long)id, via,
             log_quote(by));
    p = xcalloc(1, sizeof(*p));
    p->t = t;
    p->id = id;
    p->done = done;
    p->arg = arg;
    loop_after_commit(t->db, ack_committed, p);
    return 1;
}

struct link_ack {
    struct http_request *req;
    struct tenant *t;
    int64_t id;
    int contact;
    char *by;
};

/* The link's acknowledgement is durable (or not): answer the page, and put it in the
 * tenant's history (the person is who they said they were on the page, no more). */
static void
link_acked(void *arg, int ok)
{
    struct link_ack *l = arg;
    struct store_esc e;
    char *err = NULL;

    if (!ok) {
        page(l->req, 503, "Unavailable", "The acknowledgement could not be stored; try again.",
             NULL, NULL);
    } else {
        cJSON *d = cJSON_CreateObject();
        char target[48], *text;

        cJSON_AddStringToObject(d, "via", "link");
        cJSON_AddNumberToObject(d, "contact", l->contact);
        cJSON_AddStringToObject(d, "by", l->by);
        text = json_print(d);
        cJSON_Delete(d);
        snprintf(target, sizeof(target), "escalation:%lld", (long long)l->id);
        tenant_audit(l->t, NULL, "escalation.ack", target, "ok", text);
        free(text);
        if (store_esc_get(l->t->db, l->id, &e, &err) == 1) {
            page(l->req, 200, "受領しました / Acknowledged",
                 "Thank you: the contact chain has stopped.", &e, NULL);
            store_esc_free(&e);
        } else {
            page(l->req, 200, "受領しました / Acknowledged", "Thank you.", NULL, NULL);
        }
        free(err);
    }
    free(l->by);
    free(l);
}

/* Read "by=" from a form body: URL-decoded, control characters dropped, at most 128
 * bytes. Malloc'd, "" when absent. */
static char *
form_by(const char *body, size_t len)
{
    char **names = NULL, **values = NULL, *out = NULL, *q = xstrndup(body, len);
    size_t n = 0;

    http_parse_query(q, &names, &values, &n);
    for (size_t i = 0; i < n; i++) {
        if (out == NULL && strcmp(names[i], "by") == 0 && values[i] != NULL) {
            out = util_utf8_clean(values[i], strlen(values[i]), NULL);
        }
        free(names[i]);
        free(values[i]);
    }
    free(names);
    free(values);
    free(q);
    if (out == NULL) {
        out = xstrdup("");
    }
    for (char *p = out; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *p = ' ';
        }
    }
    if (strlen(out) > ESC_BY_MAX) {
        out[ESC_BY_MAX] = '\0';
    }
    return out;
}

/* One decimal path segment of 1 to 18 digits (no sign, no overflow) at *p, which moves
 * past it and its '/' (or to the end when last). -1 otherwise. */
static int
link_number(const char **p, int last, long long *out)
{
    long long v = 0;
    int n = 0;

    while (**p >= '0' && **p <= '9' && n < 18) { /* 18 digits cannot overflow */
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    if (n == 0 || (last ? **p != '\0' : **p != '/')) { /* a 19th digit lands here too */
        return -1;
    }
    if (!last) {
        (*p)++;
    }
    *out = v;
    return 0;
}

int
escalate_parse_link(const char *path, char tenant[64], long long *id, int *contact,
                    long long *expires, char mac[65])
{
    const char *p = path + 5, *slash;
    long long c = 0;
    size_t n;

    if (strncmp(path, "/ack/", 5) != 0 || (slash = strchr(p, '/')) == NULL) {
        return -1;
    }
    n = (size_t)(slash - p);
    if (n == 0 || n > 63 || strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-") != n) {
        return -1;
    }
    memcpy(tenant, p, n);
    tenant[n] = '\0';
    p = slash + 1;
    if (link_number(&p, 0, id) == -1 || link_number(&p, 0, &c) == -1 || c > 1000000 ||
        link_number(&p, 0, expires) == -1) {
        return -1;
    }
    if (strlen(p) != 64 || strspn(p, "0123456789abcdef") != 64) {
        return -1;
    }
    memcpy(mac, p, 65);
    *contact = (int)c;
    return 0;
}

/* /ack/<tenant>/<id>/<contact>/<expires>/<mac>: GET shows the page, POST acknowledges. */
static void
handle_ack(struct http_request *req, void *arg)
{
    const char *method = http_request_method(req), *path = http_request_path(req);
    char tenant[64], mac[65], want[65];
    long long id = 0, expires = 0;
    int contact = 0, post = strcmp(method, "POST") == 0;
    struct tenant *t;
    struct store_esc e;
    char *err = NULL;

    (void)arg;
    if (!post && strcmp(method, "GET") != 0) {
        http_reply_header(req, "Allow", "GET, POST");
        http_reply_error(req, 405, "method_not_allowed", "GET or POST");
        return;
    }
    if (escalate_parse_link(path, tenant, &id, &contact, &expires, mac) == -1 || !esc.have_key) {
        esc.links_refused++;
        page(req, 404, "Not found", "This link is not valid.", NULL, NULL);
        return;
    }
    link_mac(tenant, id, contact, expires, want);
    if (CRYPTO_memcmp(want, mac, 64) != 0) {
        esc.links_refused++;
        log_warn("escalate.link_refused reason=signature tenant=%s escalation=%lld",
                 log_quote(tenant), id);
        page(req, 403, "Refused", "This link is not valid (its signature does not match).", NULL,
             NULL);
        return;
    }
    if ((t = tenant_find(tenant)) == NULL) {
        esc.links_refused++;
        page(req, 404, "Not found", "This link is not valid.", NULL, NULL);
        return;
    }
    if (util_now_ms() / 1000 > expires) {
        esc.links_refused++;
        page(req, 410, "Expired", "This link has expired.", NULL, NULL);
        return;
    }
    if (store_esc_get(t->db, id, &e, &err) != 1) {
        free(err);
        esc.links_refused++;
        page(req, 404, "Not found", "This link is not valid.", NULL, NULL);
        return;
    }
    if (e.acked_ms > 0) {
        esc.links_refused++;
        page(req, 409, "Already acknowledged",
             "This escalation has already been acknowledged: the link cannot be used again.", &e,
             NULL);
        store_esc_free(&e);
        return;
    }
    if (!post) {
        page(req, 200, "緊急連絡の受領 / Acknowledge an urgent notice",
             "Confirm that you have received this notice. Nothing happens until you press "
             "the button.",
             &e, path);
        store_esc_free(&e);
        return;
    }
    store_esc_free(&e);
    {
        size_t blen = 0;
        const char *body = http_request_body(req, &blen);
        char *by = form_by(body != NULL ? body : "", blen);
        char *who = xasprintf("%s%scontact %d (link)", by, by[0] != '\0' ? ", " : "", contact);
        struct link_ack *l;
        int rc;

        l = xcalloc(1, sizeof(*l));
        l->req = req;
        l->t = t;
        l->id = id;
        l->contact = contact;
        l->by = xstrdup(by);
        rc = escalate_ack(t, id, who, "link", link_acked, l, &err);
        if (rc != 1) {
            free(l->by);
            free(l);
        }
        if (rc == -1) {
            page(req, 503, "Unavailable", "The acknowledgement could not be stored.", NULL, NULL);
            free(err);
        } else if (rc == 0) {
            esc.links_refused++;
            page(req, 409, "Already acknowledged", "This link cannot be used again.", NULL, NULL);
        }
        free(by);
        free(who);
    }
}

static void
escalate_metrics(struct buf *b, void *arg)
{
    (void)arg;
    metrics_counter(b, "kagari_escalations_started_total", "Escalations started", esc.started);
    metrics_counter(b, "kagari_escalations_acked_total",
                    "Escalations acknowledged (link, API or CLI), counted when the chain stops",
                    esc.acked);
    metrics_counter(b, "kagari_escalations_exhausted_total",
                    "Escalations whose whole chain was reached without an acknowledgement",
                    esc.exhausted);
    metrics_counter(b, "kagari_escalation_contacts_reached_total",
                    "Contacts whose wait passed without an acknowledgement", esc.notified_contacts);
    metrics_counter(b, "kagari_escalation_links_refused_total",
                    "Acknowledge links refused (bad signature, expired, used)", esc.links_refused);
    metrics_gauge(b, "kagari_escalation_tta_seconds_sum",
                  "Sum of the times to acknowledge (link) in seconds", esc.tta_sum);
    metrics_counter(b, "kagari_escalation_tta_seconds_count", "Acknowledgements timed",
                    esc.tta_count);
    {
        unsigned long long n = 0;

        for (struct esc_wait *w = esc.waits; w != NULL; w = w->next) {
            n++;
        }
        metrics_gauge(b, "kagari_escalations_waiting", "Escalations waiting on a contact",
                      (double)n);
    }
}

/* The link key: 32 random bytes in key_file (mode 0600), made on first start. */
static int
load_key(const char *path, char **errp)
{
    size_t len = 0;
    char *k;

    if (access(path, F_OK) != 0) {
        unsigned char fresh[ESC_KEY_LEN];

        if (util_random(fresh, sizeof(fresh)) == -1 ||
            util_write_file(path, fresh, sizeof(fresh), 0600, errp) == -1) {
            return -1;
        }
        log_info("escalate.key_created path=%s", log_quote(path));
    }
    k = util_read_file(path, 4096, &len, errp);
    if (k == NULL) {
        return -1;
    }
    if (len != ESC_KEY_LEN) {
        OPENSSL_cleanse(k, len);
        free(k);
        return kg_err(errp, "%s: the escalation link key must be %d bytes", path, ESC_KEY_LEN);
    }
    memcpy(esc.key, k, ESC_KEY_LEN);
    OPENSSL_cleanse(k, len);
    free(k);
    esc.have_key = 1;
    return 0;
}

int
escalate_start(const struct config *cfg, char **errp)
{
    const struct escalate_conf *c = config_block(cfg, &escalate_section);
    char *path;
    int rc;

    esc.link_ttl = c != NULL && c->link_ttl > 0 ? c->link_ttl : 86400;
    free(esc.base_url);
    esc.base_url = c != NULL && c->base_url != NULL ? xstrdup(c->base_url) : NULL;
    path = c != NULL && c->key_file != NULL ? xstrdup(c->key_file)
                                            : xasprintf("%s/escalation.key", cfg->data_dir);
    rc = load_key(path, errp);
    free(path);
    if (rc == -1) {
        return -1;
    }
    intake_add_route("/ack/", handle_ack, NULL);
    metrics_add(escalate_metrics, NULL);
    return 0;
}

void
escalate_stop(void)
{
    metrics_remove(escalate_metrics, NULL);
    OPENSSL_cleanse(esc.key, sizeof(esc.key));
    esc.have_key = 0;
    free(esc.base_url);
    esc.base_url = NULL;
}
