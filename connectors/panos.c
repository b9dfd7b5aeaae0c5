/* panos.c: the playbooks' `panos` module (reference: connectors.md section 7).
 *
 * Blocks are User-ID registrations of IP-to-tag mappings: a Dynamic Address Group in a
 * deny rule matches the tag, so a block takes effect with no commit. Every run's
 * block_ip/unblock_ip is its own journaled effect, but the requests of all runs of a
 * tenant that arrive within panos.batch_window go out in one uid-message, and each
 * effect gets its own entry's answer. A block left in doubt by a crash asks the
 * firewall whether the tag is there before registering anything.
 *
 * Every value that goes into a request document or an xpath is checked for its type
 * (an address or subnet, a tag, an object name) and escaped; anything else raises in
 * the playbook before the effect is journaled. The API's description and settings are
 * in panos_api.c, the commit in panos_commit.c, the key's set-up verb in
 * panos_keygen.c; the EDL route is here, with the block list it serves. */
#include "connectors/panos.h"

#include <arpa/inet.h>
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "connectors/panos_api.h"
#include "connectors/panos_commit.h"

#define PANOS_DESC_MAX 1023
#define PANOS_BATCH_MAX 500 /* entries per uid-message */
#define PANOS_HOUR_MS 3600000

/* ---- per-tenant runtime: the block batch ----
 *
 * Kept by tenant id for the life of the process (a reload gives the tenant a new
 * object; runs carry on). Everything in flight belongs to effects, which belong to
 * runs: when the last effect waiting on a batch goes away, its call goes too, so
 * nothing outlives the runs that asked for it. */

struct blk_op;

struct batch {
    struct prt *rt;
    struct call *call;
    struct blk_op **ops; /* NULL slots: effects cancelled meanwhile */
    size_t n, live;
    struct batch *next;
};

struct prt {
    char *tenant;
    const struct tenant *t;     /* the tenant object of the latest effect */
    struct blk_op *head, *tail; /* waiting for the batch window */
    struct event *timer;
    struct batch *batches; /* in flight */
    size_t reserved;       /* blocks accepted and not finished yet */
    struct prt *next;
};

static struct prt *prts;

/* Summed over tenants (the metrics endpoint is open to every sender). */
static struct {
    unsigned long long registered, already, reconciled, refused, failed, unregistered;
    unsigned long long messages, entries;
} pstats;
static int metrics_on;

static void
panos_metrics(struct buf *b, void *arg)
{
    const char *n = "kagari_panos_blocks_total";

    (void)arg;
    metrics_labelled(b, n, "result", "registered", pstats.registered, 1);
    metrics_labelled(b, n, "result", "already_registered", pstats.already, 0);
    metrics_labelled(b, n, "result", "reconciled", pstats.reconciled, 0);
    metrics_labelled(b, n, "result", "refused", pstats.refused, 0);
    metrics_labelled(b, n, "result", "failed", pstats.failed, 0);
    metrics_counter(b, "kagari_panos_unblocks_total", NULL, pstats.unregistered);
    metrics_counter(b, "kagari_panos_uid_messages_total", NULL, pstats.messages);
    metrics_counter(b, "kagari_panos_uid_entries_total", NULL, pstats.entries);
}

static struct prt *
prt_get(const struct tenant *t)
{
    struct prt *p;

    for (p = prts; p != NULL; p = p->next) {
        if (strcmp(p->tenant, tenant_id(t)) == 0) {
            break;
        }
    }
    if (!metrics_on) {
        metrics_on = 1;
        metrics_add(panos_metrics, NULL);
    }
    if (p == NULL) {
        p = xcalloc(1, sizeof(*p));
        p->tenant = xstrdup(tenant_id(t));
        p->next = prts;
        prts = p;
    }
    p->t = t;
    return p;
}

/* The blocks of the last hour, for max_blocks_per_hour, are kept in a published list of
 * the tenant (one entry per block, expiring after an hour), so the limit holds across
 * restarts. Its name cannot be a tag's ("panos:" is not "panos."): the EDL never serves
 * it. -1 when it cannot be read (the block is then refused, not let through). */
#define PANOS_HOUR_LIST "panos:blocks-last-hour"

static long
blocks_last_hour(struct tenant *t)
{
    struct buf b;
    char *err = NULL;
    long n = 0;

    buf_init(&b, 4u << 20);
    if (tenant_list_text(t, PANOS_HOUR_LIST, &b, &err) == -1) {
        log_warn("panos.hour_count_failed tenant=%s err=%s", tenant_id(t), log_quote(err));
        free(err);
        buf_free(&b);
        return -1;
    }
    for (size_t i = 0; i < b.len; i++) {
        n += b.data[i] == '\n';
    }
    buf_free(&b);
    return n;
}

static void
block_made(struct tenant *t, const char *ip)
{
    static unsigned long long seq;
    int64_t now = util_now_ms();
    char *v = xasprintf("%lld %s %llu", (long long)now, ip, ++seq), *err = NULL;

    /* del of nothing drops the list's expired entries */
    if (tenant_list_put(t, PANOS_HOUR_LIST, v, now + PANOS_HOUR_MS, &err) == -1 ||
        tenant_list_del(t, PANOS_HOUR_LIST, "", &err) == -1) {
        log_warn("panos.hour_count_failed tenant=%s err=%s", tenant_id(t), log_quote(err));
    }
    free(err);
    free(v);
}

/* ---- block_ip / unblock_ip ---- */

struct blk_op {
    struct effect *ef;
    struct prt *rt;
    int unblock;
    char ip[PANOS_NET_MAX];
    char tag[PANOS_TAG_MAX + 1];
    long timeout;
    int in_doubt;     /* ask the firewall before registering */
    int reserved;     /* counted in rt->reserved */
    struct call *ask; /* the reconciling show, in flight */
    struct batch *batch;
    size_t slot;
    struct blk_op *next; /* in rt's queue */
};

static void blk_arm(struct prt *p, double seconds);

static const char *
blk_kind(const struct blk_op *o)
{
    return o->unblock ? "panos.unblock_ip" : "panos.block_ip";
}

static void
blk_unqueue(struct blk_op *o)
{
    struct prt *p = o->rt;
    struct blk_op **pp = &p->head, *prev = NULL;

    while (*pp != NULL && *pp != o) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (*pp == o) {
        *pp = o->next;
        if (p->tail == o) {
            p->tail = prev;
        }
    }
    o->next = NULL;
}

static void
blk_enqueue(struct blk_op *o)
{
    struct prt *p = o->rt;

    o->next = NULL;
    if (p->tail != NULL) {
        p->tail->next = o;
    } else {
        p->head = o;
    }
    p->tail = o;
}

static void
batch_free(struct batch *b)
{
    struct batch **pp = &b->rt->batches;

    while (*pp != NULL && *pp != b) {
        pp = &(*pp)->next;
    }
    if (*pp == b) {
        *pp = b->next;
    }
    call_request_cancel(b->call);
    free(b->ops);
    free(b);
}

/* The tenant's published block list of o's tag (served as the EDL) follows every block
 * and unblock the firewall confirmed; a failure to record it is logged, the firewall's
 * state stands. */
static void
edl_update(struct tenant *t, const struct blk_op *o)
{
    char *list = xasprintf("panos.%s", o->tag), *err = NULL;
    int rc;

    if (o->unblock) {
        rc = tenant_list_del(t, list, o->ip, &err);
    } else {
        rc = tenant_list_put(t, list, o->ip,
                             o->timeout > 0 ? util_now_ms() + (int64_t)o->timeout * 1000 : 0, &err);
    }
    if (rc == -1) {
        log_warn("panos.edl_update_failed tenant=%s ip=%s err=%s", tenant_id(t), o->ip,
                 log_quote(err));
    }
    free(err);
    free(list);
}

/* Finish the effect (the op is freed first: effect_done is its owner's last call). */
static void
blk_done(struct blk_op *o, int ok, const char *status_or_msg)
{
    struct effect *ef = o->ef;
    struct prt *p = o->rt;
    char *result;

    if (o->reserved) {
        p->reserved--;
    }
    if (ok) {
        cJSON *r = cJSON_CreateObject();

        edl_update(run_tenant(effect_owner(ef)), o);
        if (o->unblock) {
            pstats.unregistered += strcmp(status_or_msg, "unregistered") == 0;
        } else if (strcmp(status_or_msg, "registered") == 0) {
            pstats.registered++;
        } else if (strcmp(status_or_msg, "already_registered") == 0) {
            pstats.already++;
        } else {
            pstats.reconciled++;
        }
        cJSON_AddStringToObject(r, "ip", o->ip);
        cJSON_AddStringToObject(r, "tag", o->tag);
        if (!o->unblock) {
            cJSON_AddNumberToObject(r, "timeout", (double)o->timeout);
            if (strcmp(status_or_msg, "registered") == 0) {
                block_made(run_tenant(effect_owner(ef)), o->ip);
            }
        }
        cJSON_AddStringToObject(r, "status", status_or_msg);
        result = json_print(r);
        cJSON_Delete(r);
        log_info("panos.%s tenant=%s ip=%s tag=%s status=%s", o->unblock ? "unblock" : "block",
                 p->tenant, o->ip, o->tag, status_or_msg);
    } else {
        pstats.failed += !o->unblock;
        result = xstrdup(status_or_msg);
    }
    free(o);
    effect_done(ef, ok, result);
    free(result);
}

/* The run went away: the op leaves its queue, its batch or its question. */
static void
blk_cancel(void *op)
{
    struct blk_op *o = op;

    if (o->reserved) {
        o->rt->reserved--;
    }
    if (o->ask != NULL) {
        call_request_cancel(o->ask);
    } else if (o->batch != NULL) {
        o->batch->ops[o->slot] = NULL;
        if (--o->batch->live == 0) {
            batch_free(o->batch);
        }
    } else {
        blk_unqueue(o);
    }
    free(o);
}

/* The reconciling show answered: the mapping is already as asked (done, nothing sent),
 * or the op joins the next batch. */
static void
blk_asked(void *arg, int ok, const char *result)
{
    struct blk_op *o = arg;
    struct xml_node *root = NULL;
    int has = 0;

    o->ask = NULL;
    if (!ok) {
        char *msg = xasprintf("%s: the firewall's state could not be read after a restart "
                              "(%s); not sent again",
                              blk_kind(o), result);

        blk_done(o, 0, msg);
        free(msg);
        return;
    }
    if (panos_api_raw_parse(result, &root) == -1 ||
        strcmp(xml_attr(root, "status"), "success") != 0) {
        char *msg = root != NULL ? panos_api_error(blk_kind(o), root)
                                 : xasprintf("%s: unreadable answer", blk_kind(o));

        xml_free(root);
        blk_done(o, 0, msg);
        free(msg);
        return;
    }
    for (const struct xml_node *e = xml_child(root, "result") ? xml_child(root, "result")->child
                                                              : NULL;
         e != NULL; e = e->next) {
        const char *ip = xml_attr(e, "ip");

        if (strcmp(e->name, "entry") != 0 || ip == NULL || strcasecmp(ip, o->ip) != 0) {
            continue;
        }
        for (const struct xml_node *m = xml_child(e, "tag") ? xml_child(e, "tag")->child : NULL;
             m != NULL; m = m->next) {
            if (strcmp(m->name, "member") == 0 && strcmp(m->text, o->tag) == 0) {
                has = 1;
            }
        }
    }
    xml_free(root);
    if (has != o->unblock) {
        log_info("panos.reconciled tenant=%s ip=%s tag=%s", o->rt->tenant, o->ip, o->tag);
        blk_done(o, 1, "reconciled");
        return;
    }
    blk_enqueue(o);
    blk_arm(o->rt, 0);
}

/* The per-entry message the firewall gave for o, or NULL when it gave none. */
static const char *
entry_message(const struct xml_node *root, const struct blk_op *o)
{
    const struct xml_node *payload = xml_path(root, "msg/line/uid-response/payload");
    const struct xml_node *sect = xml_child(payload, o->unblock ? "unregister" : "register");

    for (const struct xml_node *e = sect != NULL ? sect->child : NULL; e != NULL; e = e->next) {
        const char *ip = xml_attr(e, "ip");

        if (strcmp(e->name, "entry") == 0 && ip != NULL && strcasecmp(ip, o->ip) == 0) {
            const char *m = xml_attr(e, "message");

            return m != NULL ? m : (e->text != NULL ? e->text : "");
        }
    }
    return NULL;
}

/* The batch's answer, given to each effect in it: per-entry messages saying the
 * mapping was already there (or already gone) are success, as for the firewall's own
 * tools; any other message fails that entry only. */
static void
batch_answered(void *arg, int ok, const char *result)
{
    struct batch *b = arg;
    struct xml_node *root = NULL;
    int whole_error = 0;
    char *whole = NULL;

    b->call = NULL;
    if (ok && panos_api_raw_parse(result, &root) == -1) {
        ok = 0;
    }
    if (ok && strcmp(xml_attr(root, "status"), "success") != 0 &&
        xml_path(root, "msg/line/uid-response") == NULL) {
        whole_error = 1;
    }
    for (size_t i = 0; i < b->n; i++) {
        struct blk_op *o = b->ops[i];
        const char *m;

        if (o == NULL) {
            continue;
        }
        b->ops[i] = NULL;
        o->batch = NULL;
        if (!ok) {
            char *msg = strncmp(result, "panos.uid_message: ", 19) == 0
                            ? xasprintf("%s: %s", blk_kind(o), result + 19)
                            : xasprintf("%s: %s", blk_kind(o), result);

            blk_done(o, 0, msg);
            free(msg);
        } else if (whole_error) {
            free(whole);
            whole = panos_api_error(blk_kind(o), root);
            blk_done(o, 0, whole);
        } else if ((m = entry_message(root, o)) == NULL) {
            blk_done(o, 1, o->unblock ? "unregistered" : "registered");
        } else if (!o->unblock && strstr(m, "already exists") != NULL) {
            blk_done(o, 1, "already_registered");
        } else if (o->unblock && strstr(m, "does not exist") != NULL) {
            blk_done(o, 1, "not_registered");
        } else {
            char *msg = xasprintf("%s: %s: %s", blk_kind(o), o->ip, m);

            blk_done(o, 0, msg);
            free(msg);
        }
    }
    free(whole);
    xml_free(root);
    batch_free(b);
}

/* Append the uid-message entry of o. */
static void
entry_xml(struct buf *x, const struct blk_op *o)
{
    (void)!buf_puts(x, "<entry ip=\"");
    (void)!xml_escape(x, o->ip);
    (void)!buf_puts(x, "\"><tag><member");
    if (!o->unblock && o->timeout > 0) {
        (void)!buf_printf(x, " timeout=\"%ld\"", o->timeout);
    }
    (void)!buf_puts(x, ">");
    (void)!xml_escape(x, o->tag);
    (void)!buf_puts(x, "</member></tag></entry>");
}

/* 1 when a and b ask for the very same entry (two runs blocking one address). */
static int
same_entry(const struct blk_op *a, const struct blk_op *b)
{
    return a->unblock == b->unblock && a->timeout == b->timeout && strcmp(a->ip, b->ip) == 0 &&
           strcmp(a->tag, b->tag) == 0;
}

/* The batch window closed: ops in doubt ask first; the others go out in one message.
 * One address appears once per message (the firewall processes unregisters before
 * registers, and answers per address), so a different request for an address already
 * in the message waits for the next one, in order. */
static void
blk_flush(evutil_socket_t fd, short what, void *arg)
{
    struct prt *p = arg;
    struct blk_op *o, *next, *keep_head = NULL, *keep_tail = NULL;
    struct batch *b;
    struct buf reg, unreg;
    size_t entries = 0;

    (void)fd;
    (void)what;
    if (p->head == NULL) {
        return;
    }
    /* The tenant object of a waiting run: current even across a reload. */
    p->t = run_tenant(effect_owner(p->head->ef));
    b = xcalloc(1, sizeof(*b));
    b->rt = p;
    buf_init(&reg, 0);
    buf_init(&unreg, 0);
    for (o = p->head; o != NULL; o = next) {
        size_t k;
        int join = -1, clash = 0;

        next = o->next;
        o->next = NULL;
        if (o->in_doubt) {
            struct call_spec spec = { 0 };
            char *cmd = panos_api_show_registered(o->ip, NULL, 1), *path = panos_api_op_path(cmd),
                 *err = NULL;

            o->in_doubt = 0;
            spec.kind = "panos.registered_ip";
            spec.api = &panos_api_xml;
            spec.limiter = "panos";
            spec.prio = LIMITER_CONTAIN;
            spec.idempotent = 1;
            spec.method = "GET";
            spec.path = path;
            spec.map = panos_api_map_raw;
            o->ask = call_request(p->t, &spec, blk_asked, o, &err);
            free(cmd);
            free(path);
            if (o->ask == NULL) {
                blk_done(o, 0, err);
            }
            free(err);
            continue;
        }
        for (k = 0; k < b->n; k++) {
            if (strcmp(b->ops[k]->ip, o->ip) == 0) {
                if (same_entry(b->ops[k], o)) {
                    join = (int)k;
                } else {
                    clash = 1;
                }
            }
        }
        for (struct blk_op *kept = keep_head; kept != NULL && !clash; kept = kept->next) {
            clash = strcmp(kept->ip, o->ip) == 0; /* an earlier request waits: keep order */
        }
        if (clash || (join < 0 && entries >= PANOS_BATCH_MAX)) {
            /* keep it for the next message */
            if (keep_tail != NULL) {
                keep_tail->next = o;
            } else {
                keep_head = o;
            }
            keep_tail = o;
            continue;
        }
        b->ops = xrealloc(b->ops, (b->n + 1) * sizeof(*b->ops));
        o->batch = b;
        o->slot = b->n;
        b->ops[b->n++] = o;
        b->live++;
        if (join < 0) {
            entry_xml(o->unblock ? &unreg : &reg, o);
            entries++;
        }
    }
    p->head = keep_head;
    p->tail = keep_tail;
    if (b->n > 0) {
        struct call_spec spec = { 0 };
        struct buf x;
        char *cmd, *body, *err = NULL;

        buf_init(&x, 0);
        (void)!buf_puts(&x, "<uid-message><version>2.0</version><type>update</type><payload>");
        if (unreg.len > 0) {
            (void)!buf_printf(&x, "<unregister>%s</unregister>", unreg.data);
        }
        if (reg.len > 0) {
            (void)!buf_printf(&x, "<register>%s</register>", reg.data);
        }
        (void)!buf_puts(&x, "</payload></uid-message>");
        cmd = call_escape(x.data);
        body = xasprintf("type=user-id&cmd=%s", cmd);
        free(cmd);
        buf_free(&x);
        spec.kind = "panos.uid_message";
        spec.api = &panos_api_xml;
        spec.limiter = "panos";
        spec.prio = LIMITER_CONTAIN;
        spec.idempotent = 1; /* a repeat finds every mapping already as asked */
        spec.method = "POST";
        spec.path = "/api/";
        spec.body = body;
        spec.body_format = CALL_BODY_FORM;
        spec.map = panos_api_map_raw;
        b->next = p->batches;
        p->batches = b;
        log_info("panos.batch tenant=%s effects=%zu entries=%zu", p->tenant, b->n, entries);
        pstats.messages++;
        pstats.entries += entries;
        b->call = call_request(p->t, &spec, batch_answered, b, &err);
        free(body);
        if (b->call == NULL) {
            batch_answered(b, 0, err ? err : "not configured");
        }
        free(err);
    } else {
        free(b->ops);
        free(b);
    }
    buf_free(&reg);
    buf_free(&unreg);
    if (p->head != NULL) {
        blk_arm(p, 0);
    }
}

static void
blk_arm(struct prt *p, double seconds)
{
    struct timeval tv;

    if (p->timer == NULL) {
        p->timer = evtimer_new(loop_base(), blk_flush, p);
    }
    if (evtimer_pending(p->timer, NULL) && seconds > 0) {
        return; /* the window is already open: join it */
    }
    tv.tv_sec = (time_t)seconds;
    tv.tv_usec = (suseconds_t)((seconds - floor(seconds)) * 1e6);
    evtimer_add(p->timer, &tv);
}

/* What the Lua function hands the effect driver. */
struct blk_args {
    int unblock;
    const char *ip, *tag;
    long timeout;
};

/* The guardrails, before anything is sent (and recorded as the effect's failure). */
static char *
blk_check(struct run *r, void *arg)
{
    const struct blk_args *a = arg;
    const struct tenant *t = run_tenant(r);
    const struct panos_conf *conf = tenant_conf(t, &panos_api_section);
    const struct panos_state *s = tenant_state(t, &panos_api_section);
    const char *hit;
    struct prt *p;
    long made;

    if (conf == NULL || s == NULL) {
        return xstrdup(panos_api_xml.not_configured);
    }
    if (a->unblock) {
        return NULL;
    }
    if ((hit = panos_guard_match(s->guard, a->ip)) != NULL) {
        pstats.refused++;
        return xasprintf("panos.block_ip: %s is never blocked (it is within %s of "
                         "tenants.%s.panos.never_block or the firewall's own address)",
                         a->ip, hit, tenant_id(t));
    }
    p = prt_get(t);
    if ((made = blocks_last_hour(run_tenant(r))) < 0 ||
        (size_t)made + p->reserved >= (size_t)conf->max_blocks_per_hour) {
        pstats.refused++;
        if (made < 0) {
            return xasprintf("panos.block_ip: %s not blocked: the count of this hour's blocks "
                             "cannot be read now",
                             a->ip);
        }
        return xasprintf("panos.block_ip: %s not blocked: the tenant's limit of %d blocks per "
                         "hour (tenants.%s.panos.max_blocks_per_hour) is reached",
                         a->ip, conf->max_blocks_per_hour, tenant_id(t));
    }
    return NULL;
}

static void *
blk_open(struct effect *ef, void *arg)
{
    const struct blk_args *a = arg;
    struct blk_op *o = xcalloc(1, sizeof(*o));

    o->ef = ef;
    o->rt = prt_get(run_tenant(effect_owner(ef)));
    o->unblock = a->unblock;
    snprintf(o->ip, sizeof(o->ip), "%s", a->ip);
    snprintf(o->tag, sizeof(o->tag), "%s", a->tag);
    o->timeout = a->timeout;
    o->in_doubt = effect_in_doubt(ef);
    if (!o->unblock) {
        o->reserved = 1;
        o->rt->reserved++;
    }
    return o;
}

static void
blk_start(void *op)
{
    struct blk_op *o = op;
    const struct panos_conf *conf =
        tenant_conf(run_tenant(effect_owner(o->ef)), &panos_api_section);

    blk_enqueue(o);
    blk_arm(o->rt, conf != NULL ? conf->batch_window : 0.2);
}

/* The address argument: checked, then canonical (so "2001:DB8::1" and "2001:db8::1"
 * are one entry, in the journal too). Pushed on the stack. */
static const char *
check_ip(lua_State *L, int idx, int allow_cidr)
{
    size_t len;
    const char *s;
    char canon[PANOS_NET_MAX];

    if (lua_type(L, idx) != LUA_TSTRING) {
        luaL_argerror(L, idx,
                      lua_pushfstring(L, "expected an IP address%s, got %s",
                                      allow_cidr ? " or a CIDR subnet" : "",
                                      luaL_typename(L, idx)));
    }
    s = lua_tolstring(L, idx, &len);
    if (panos_parse_net(s, len, allow_cidr, canon) == -1) {
        luaL_argerror(
            L, idx,
            lua_pushfstring(L,
                            "expected an IP address%s (refused before anything was "
                            "sent)",
                            allow_cidr ? " or a CIDR subnet with its host bits zero" : ""));
    }
    lua_pushstring(L, canon);
    return lua_tostring(L, -1);
}

/* The tag at idx, an option of the argument arg (the error names that argument). */
static const char *
check_tag(lua_State *L, int idx, int arg, const char *what)
{
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);

    if (lua_type(L, idx) != LUA_TSTRING || !panos_valid_tag(s, len)) {
        luaL_argerror(L, arg,
                      lua_pushfstring(L,
                                      "%s: expected a tag of 1 to %d letters, digits, '-', "
                                      "'_', '.' or inner spaces",
                                      what, PANOS_TAG_MAX));
    }
    return s;
}

static const char *
check_name(lua_State *L, int idx, const char *what)
{
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);

    if (lua_type(L, idx) != LUA_TSTRING || !panos_valid_name(s, len)) {
        luaL_argerror(L, idx,
                      lua_pushfstring(L,
                                      "%s: expected a name of 1 to %d letters, digits, "
                                      "'-', '_', '.' or inner spaces, starting with a "
                                      "letter or digit",
                                      what, PANOS_NAME_MAX));
    }
    return s;
}

/* The options table at idx (nil allowed) with only these keys. */
static void
check_opts(lua_State *L, int idx, const char *const *keys)
{
    if (lua_isnoneornil(L, idx)) {
        return;
    }
    luaL_checktype(L, idx, LUA_TTABLE);
    if (lcheck_unknown_key(L, idx, keys)) {
        luaL_argerror(L, idx, lua_pushfstring(L, "unknown option '%s'", lua_tostring(L, -1)));
    }
}

/* The tenant's settings for a function that needs them at argument time (the default
 * tag), or NULL outside a run or without a panos block. */
static const struct panos_conf *
lua_conf(lua_State *L)
{
    struct run *r = run_from_lua(L);

    return r != NULL ? tenant_conf(run_tenant(r), &panos_api_section) : NULL;
}

static int
blk_effect(lua_State *L, int unblock)
{
    static const char *const block_keys[] = { "tag", "timeout", NULL };
    static const char *const unblock_keys[] = { "tag", NULL };
    const struct panos_conf *conf = lua_conf(L);
    struct effect_spec es = { 0 };
    struct blk_args a = { 0 };
    cJSON *req;
    char *text;

    lua_settop(L, 2); /* the options' place, before anything is pushed */
    a.unblock = unblock;
    a.ip = check_ip(L, 1, 1);
    check_opts(L, 2, unblock ? unblock_keys : block_keys);
    a.tag = conf != NULL ? conf->tag : "kagari-block";
    a.timeout = conf != NULL ? (long)conf->block_timeout : 0;
    if (lua_istable(L, 2)) {
        if (lua_getfield(L, 2, "tag") != LUA_TNIL) {
            a.tag = check_tag(L, lua_gettop(L), 2, "tag");
        }
        if (!unblock && lua_getfield(L, 2, "timeout") != LUA_TNIL) {
            lua_Integer v = 0;

            if (!lua_isinteger(L, -1) || (v = lua_tointeger(L, -1)) < 0 || v > PANOS_TIMEOUT_MAX) {
                luaL_argerror(L, 2,
                              lua_pushfstring(L,
                                              "timeout: expected whole seconds from 0 (until "
                                              "unblocked) to %d",
                                              PANOS_TIMEOUT_MAX));
            }
            a.timeout = (long)v;
        }
    }
    req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "ip", a.ip);
    cJSON_AddStringToObject(req, "tag", a.tag);
    if (!unblock) {
        cJSON_AddNumberToObject(req, "timeout", (double)a.timeout);
    }
    text = json_print(req);
    cJSON_Delete(req);
    lua_pushstring(L, text); /* owned by the stack if anything below raises */
    free(text);
    es.kind = unblock ? "panos.unblock_ip" : "panos.block_ip";
    es.request = lua_tostring(L, -1);
    es.flags = EFFECT_OUTSIDE | EFFECT_RECONCILES;
    es.check = blk_check;
    es.open = blk_open;
    es.start = blk_start;
    es.cancel = blk_cancel;
    es.arg = &a;
    return effect_run(L, &es);
}

/* panos.block_ip(ip, {tag=, timeout=}) */
static int
l_panos_block_ip(lua_State *L)
{
    return blk_effect(L, 0);
}

/* panos.unblock_ip(ip, {tag=}) */
static int
l_panos_unblock_ip(lua_State *L)
{
    return blk_effect(L, 1);
}

/* ---- blocked, address objects, groups ---- */

/* Each page of show registered-ip adds its entries; a full page asks for the next: the
 * same request with its start-point moved on. */
static int
map_blocked(struct call *c, const struct httpc_response *resp, char **result)
{
    static const char mark[] = "%3Cstart-point%3E";
    struct xml_node *root = NULL;
    cJSON *acc = call_acc(c);
    int n;

    if (panos_api_parse(c, resp, &root, result) == -1) {
        return 0;
    }
    if (strcmp(xml_attr(root, "status"), "success") != 0) {
        *result = panos_api_error(call_kind(c), root);
        xml_free(root);
        return 0;
    }
    n = panos_api_entries(xml_child(root, "result"), acc);
    xml_free(root);
    if (n >= PANOS_SHOW_LIMIT) {
        const char *url = call_url(c), *at = strstr(url, mark);

        if (at != NULL) {
            const char *rest = at + strlen(mark) + strspn(at + strlen(mark), "0123456789");
            char *next = xasprintf("%.*s%s%d%s", (int)(at - url), url, mark,
                                   cJSON_GetArraySize(acc) + 1, rest);
            int rc = call_next_page(c, next, result);

            free(next);
            if (rc != 1) {
                return rc;
            }
        }
    }
    *result = json_print(acc);
    return 1;
}

/* panos.blocked{tag=}: the firewall's current mappings with that tag (default: the
 * tenant's block tag; tag = "*" lists every registered address). */
static int
l_panos_blocked(lua_State *L)
{
    static const char *const keys[] = { "tag", NULL };
    const struct panos_conf *conf = lua_conf(L);
    const char *tag = conf != NULL ? conf->tag : "kagari-block";
    struct call_spec spec = { 0 };
    char *cmd, *path;

    lua_settop(L, 1);
    check_opts(L, 1, keys);
    if (lua_istable(L, 1) && lua_getfield(L, 1, "tag") != LUA_TNIL) {
        tag = lua_tostring(L, -1);
        if (tag == NULL || strcmp(tag, "*") != 0) {
            tag = check_tag(L, lua_gettop(L), 1, "tag");
        } else {
            tag = NULL;
        }
    }
    cmd = panos_api_show_registered(NULL, tag, 1);
    path = panos_api_op_path(cmd);
    free(cmd);
    lua_pushstring(L, path);
    free(path);
    spec.kind = "panos.blocked";
    spec.api = &panos_api_xml;
    spec.limiter = "panos";
    spec.prio = LIMITER_ENRICH;
    spec.idempotent = 1;
    spec.method = "GET";
    spec.path = lua_tostring(L, -1);
    spec.map = map_blocked;
    return call_effect(L, &spec);
}

/* The vsys xpath of the tenant's firewall (device and vsys are CONFIG_NAME values:
 * letters, digits, '.', '-', '_'). */
static char *
vsys_xpath(const struct panos_conf *conf)
{
    return xasprintf("/config/devices/entry[@name='%s']/vsys/entry[@name='%s']",
                     conf != NULL ? conf->device : "localhost.localdomain",
                     conf != NULL ? conf->vsys : "vsys1");
}

/* Push the form body of a config request: type=config&action=..&xpath=..[&element=..]. */
static const char *
push_config_body(lua_State *L, const char *action, const char *xpath, const char *element)
{
    char *x = call_escape(xpath), *e = element != NULL ? call_escape(element) : NULL;
    char *body = xasprintf("type=config&action=%s&xpath=%s%s%s", action, x, e ? "&element=" : "",
                           e ? e : "");

    lua_pushstring(L, body);
    free(body);
    free(x);
    free(e);
    return lua_tostring(L, -1);
}

static int
config_effect(lua_State *L, const char *kind, const char *body)
{
    struct call_spec spec = { 0 };

    spec.kind = kind;
    spec.api = &panos_api_xml;
    spec.limiter = "panos";
    spec.prio = LIMITER_CONTAIN;
    spec.idempotent = 1; /* set merges, delete of a missing node is success */
    spec.method = "POST";
    spec.path = "/api/";
    spec.body = body;
    spec.body_format = CALL_BODY_FORM;
    spec.map = panos_api_map_config;
    return call_effect(L, &spec);
}

/* panos.add_address(name, ip_or_cidr, {description=, tags={...}}): an address object
 * in the candidate configuration (set merges: repeating it is harmless). */
static int
l_panos_add_address(lua_State *L)
{
    static const char *const keys[] = { "description", "tags", NULL };
    const char *name = (lua_settop(L, 3), check_name(L, 1, "name"));
    const char *net = check_ip(L, 2, 1);
    char *prefix, *xpath;
    struct buf el;
    const char *body;

    check_opts(L, 3, keys);
    prefix = vsys_xpath(lua_conf(L));
    buf_init(&el, 0);
    (void)!buf_puts(&el, "<ip-netmask>");
    (void)!xml_escape(&el, net);
    (void)!buf_puts(&el, "</ip-netmask>");
    if (lua_istable(L, 3)) {
        if (lua_getfield(L, 3, "description") != LUA_TNIL) {
            size_t len;
            const char *d = lua_tolstring(L, -1, &len);

            (void)!buf_puts(&el, "<description>");
            if (lua_type(L, -1) != LUA_TSTRING || len > PANOS_DESC_MAX ||
                xml_escape(&el, d) == -1 || strlen(d) != len) {
                buf_free(&el);
                free(prefix);
                return luaL_argerror(L, 3,
                                     "description: expected text of at most 1023 bytes of "
                                     "UTF-8 without control characters");
            }
            (void)!buf_puts(&el, "</description>");
        }
        lua_pop(L, 1);
        if (lua_getfield(L, 3, "tags") != LUA_TNIL) {
            lua_Integer n;

            if (!lua_istable(L, -1) || (n = luaL_len(L, -1)) > 64) {
                buf_free(&el);
                free(prefix);
                return luaL_argerror(L, 3, "tags: expected a list of at most 64 tags");
            }
            (void)!buf_puts(&el, "<tag>");
            for (lua_Integer i = 1; i <= n; i++) {
                size_t len;
                const char *t;

                lua_geti(L, -1, i);
                t = lua_tolstring(L, -1, &len);
                if (lua_type(L, -1) != LUA_TSTRING || !panos_valid_tag(t, len)) {
                    buf_free(&el);
                    free(prefix);
                    return luaL_argerror(L, 3,
                                         "tags: each is a tag of 1 to 127 letters, "
                                         "digits, '-', '_', '.' or inner spaces");
                }
                (void)!buf_puts(&el, "<member>");
                (void)!xml_escape(&el, t);
                (void)!buf_puts(&el, "</member>");
                lua_pop(L, 1);
            }
            (void)!buf_puts(&el, "</tag>");
        }
        lua_pop(L, 1);
    }
    xpath = xasprintf("%s/address/entry[@name='%s']", prefix, name);
    body = push_config_body(L, "set", xpath, el.data);
    free(prefix);
    free(xpath);
    buf_free(&el);
    return config_effect(L, "panos.add_address", body);
}

/* panos.add_to_group(group, name): a member of a static address group. */
static int
l_panos_add_to_group(lua_State *L)
{
    const char *group = check_name(L, 1, "group");
    const char *name = check_name(L, 2, "name");
    char *prefix = vsys_xpath(lua_conf(L));
    char *xpath = xasprintf("%s/address-group/entry[@name='%s']/static", prefix, group);
    struct buf el;
    const char *body;

    buf_init(&el, 0);
    (void)!buf_puts(&el, "<member>");
    (void)!xml_escape(&el, name);
    (void)!buf_puts(&el, "</member>");
    body = push_config_body(L, "set", xpath, el.data);
    free(prefix);
    free(xpath);
    buf_free(&el);
    return config_effect(L, "panos.add_to_group", body);
}

/* panos.delete_address(name): removes the address object (already absent: success);
 * one a group or rule still uses is refused by the firewall (code 10). */
static int
l_panos_delete_address(lua_State *L)
{
    const char *name = check_name(L, 1, "name");
    char *prefix = vsys_xpath(lua_conf(L));
    char *xpath = xasprintf("%s/address/entry[@name='%s']", prefix, name);
    const char *body = push_config_body(L, "delete", xpath, NULL);

    free(prefix);
    free(xpath);
    return config_effect(L, "panos.delete_address", body);
}

/* ---- the External Dynamic List: GET /edl/<tenant>[/<tag>] ----
 *
 * The addresses the tenant's firewall blocks through this connector (those of its block
 * tag, or of the tag named), one per line, for firewalls that pull a list instead of
 * (or besides) taking User-ID registrations. HTTP Basic with the tenant's edl_user and
 * edl_password; anything else (an unknown tenant, no EDL configured, a wrong password)
 * is the same 401, so the route tells nobody which tenants exist. */

static int
edl_get(const char *path, const char *authorization, struct buf *body, const char **ctype)
{
    char id[64], tag[PANOS_TAG_MAX + 1];
    const char *rest = path + strlen("/edl/"), *slash = strchr(rest, '/');
    size_t idlen = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
    struct tenant *t;
    const struct panos_conf *conf;
    const struct panos_state *st;
    char *pair, *want, *list, *err = NULL;
    size_t plen;
    int ok;

    *ctype = "text/plain; charset=utf-8";
    if (idlen == 0 || idlen >= sizeof(id)) {
        return 401;
    }
    memcpy(id, rest, idlen);
    id[idlen] = '\0';
    t = tenant_find(id);
    conf = t != NULL ? tenant_conf(t, &panos_api_section) : NULL;
    st = t != NULL ? tenant_state(t, &panos_api_section) : NULL;
    if (conf == NULL || st == NULL || st->edl_password == NULL || conf->edl_user == NULL ||
        authorization == NULL || strncasecmp(authorization, "Basic ", 6) != 0) {
        return 401;
    }
    pair = xasprintf("%s:%s", conf->edl_user, st->edl_password);
    plen = strlen(pair);
    want = xmalloc(4 * ((plen + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)want, (const unsigned char *)pair, (int)plen);
    authorization += 6;
    authorization += strspn(authorization, " ");
    ok = strlen(authorization) == strlen(want) &&
         CRYPTO_memcmp(authorization, want, strlen(want)) == 0;
    OPENSSL_cleanse(pair, plen);
    OPENSSL_cleanse(want, strlen(want));
    free(pair);
    free(want);
    if (!ok) {
        return 401;
    }
    if (slash == NULL || slash[1] == '\0') {
        snprintf(tag, sizeof(tag), "%s", conf->tag);
    } else if (!panos_valid_tag(slash + 1, strlen(slash + 1))) {
        (void)!buf_puts(body, "not a tag\n");
        return 404;
    } else {
        snprintf(tag, sizeof(tag), "%s", slash + 1);
    }
    list = xasprintf("panos.%s", tag);
    if (tenant_list_text(t, list, body, &err) == -1) {
        log_warn("panos.edl_failed tenant=%s err=%s", id, log_quote(err));
        body->len = 0;
        (void)!buf_puts(body, "the list cannot be read now\n");
        free(err);
        free(list);
        return 503;
    }
    free(list);
    return 200;
}

const struct plugin_route panos_edl_route = {
    "/edl/",
    edl_get,
};

/* ---- the module ---- */

static int
luaopen_kagari_panos(lua_State *L)
{
    static const luaL_Reg panos_funcs[] = {
        { "block_ip", l_panos_block_ip },         { "unblock_ip", l_panos_unblock_ip },
        { "blocked", l_panos_blocked },           { "add_address", l_panos_add_address },
        { "add_to_group", l_panos_add_to_group }, { "delete_address", l_panos_delete_address },
        { "commit", panos_commit_lua },           { NULL, NULL },
    };

    luaL_newlib(L, panos_funcs);
    return 1;
}

static void
panos_shutdown(void)
{
    if (metrics_on) {
        metrics_remove(panos_metrics, NULL);
        metrics_on = 0;
    }
    while (prts != NULL) {
        struct prt *p = prts;

        prts = p->next;
        /* Runs are gone by now: their effects were cancelled with them. */
        for (struct batch *b = p->batches, *n; b != NULL; b = n) {
            n = b->next;
            call_request_cancel(b->call);
            free(b->ops);
            free(b);
        }
        if (p->timer != NULL) {
            event_free(p->timer);
        }
        free(p->tenant);
        free(p);
    }
    panos_commit_shutdown();
    call_shutdown();
}

const struct connector panos_connector = {
    "panos",
    "Palo Alto Networks firewalls (PAN-OS XML API): User-ID blocks, address objects, commits",
    luaopen_kagari_panos,
    &panos_api_section,
    panos_api_tenant_open,
    panos_api_tenant_close,
    call_init,
    panos_shutdown,
};
