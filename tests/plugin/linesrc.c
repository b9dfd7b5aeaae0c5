/* linesrc.c: a test-only intake source that proves the source seam: added by this one
 * file, with its own top-level settings block, its own listener and a normalizer for
 * its native records (text lines, not JSON), ending in the one admit step like the HTTP
 * intake. It registers itself from a constructor, so only kagari-plugtest has it.
 *
 *   linesrc = { listen = "127.0.0.1:0", tenant = "t1" }
 *
 * TCP; one record per line, "source|source_id|title|severity". Each line is answered,
 * in order, once durable: "ok <alert id>", "dup <alert id>", or "error <reason>" for a
 * line that is rejected (the next line is still read). */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "engine/kagari.h"

#define LINESRC_LINE_MAX 4096

struct linesrc_conf {
    char *listen;
    char *tenant;
};

static const struct config_field linesrc_fields[] = {
    { "listen", CONFIG_LISTEN, offsetof(struct linesrc_conf, listen), 0, 0, NULL, 0 },
    { "tenant", CONFIG_NAME, offsetof(struct linesrc_conf, tenant), 0, 0, NULL, 0 },
    CONFIG_FIELDS_END,
};

static int
linesrc_check(void *conf, char **errp)
{
    struct linesrc_conf *lc = conf;

    if (lc->listen != NULL && lc->tenant == NULL) {
        return kg_err(errp, "tenant is required with listen");
    }
    return 0;
}

static const struct config_section linesrc_section = {
    "linesrc", linesrc_fields, sizeof(struct linesrc_conf), linesrc_check, NULL,
};

/* ---- the normalizer: one line, one alert ---- */

static int
name_valid(const char *s, size_t n)
{
    if (n == 0 || n > 64) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
              strchr("._-", s[i]) != NULL)) {
            return 0;
        }
    }
    return 1;
}

static int
linesrc_normalize(const char *rec, size_t len, const char *hint, int64_t received_ms,
                  struct alert **alerts, size_t *n, char **errp)
{
    const char *f[4];
    size_t flen[4];
    const char *p = rec, *end = rec + len;
    struct alert *a;
    struct buf raw;
    char sev[16];
    int level;

    (void)hint;
    if (memchr(rec, '\0', len) != NULL) {
        return kg_err(errp, "a NUL byte in the line");
    }
    for (int i = 0; i < 4; i++) {
        const char *bar = i < 3 ? memchr(p, '|', (size_t)(end - p)) : NULL;

        if (i < 3 && bar == NULL) {
            return kg_err(errp, "expected source|source_id|title|severity");
        }
        f[i] = p;
        flen[i] = (size_t)((i < 3 ? bar : end) - p);
        p = i < 3 ? bar + 1 : end;
    }
    if (!name_valid(f[0], flen[0])) {
        return kg_err(errp, "source: expected 1-64 of a-z, 0-9, '.', '_', '-'");
    }
    if (flen[1] == 0 || flen[1] > 256) {
        return kg_err(errp, "source_id: expected 1 to 256 bytes");
    }
    if (flen[2] > 1024) {
        return kg_err(errp, "title: more than 1024 bytes");
    }
    snprintf(sev, sizeof(sev), "%.*s", (int)(flen[3] < sizeof(sev) ? flen[3] : 0), f[3]);
    if ((level = severity_from_name(sev)) < 0) {
        return kg_err(errp, "severity: expected informational, low, medium, high or critical");
    }
    a = xcalloc(1, sizeof(*a));
    a->source = xstrndup(f[0], flen[0]);
    a->source_id = xstrndup(f[1], flen[1]);
    a->title = flen[2] > 0 ? xstrndup(f[2], flen[2]) : xstrdup(a->source);
    a->severity = level;
    a->vendor_severity = xstrdup(sev);
    a->outcome = xstrdup("unknown");
    a->time_ms = a->received_ms = received_ms;
    buf_init(&raw, 0);
    (void)!buf_puts(&raw, "{\"line\":");
    (void)!buf_json_string(&raw, rec, len);
    (void)!buf_puts(&raw, "}");
    a->raw = buf_take(&raw);
    *alerts = a;
    *n = 1;
    return 0;
}

/* ---- the listener ---- */

struct linesrc;

struct line_conn {
    struct linesrc *src;
    struct bufferevent *bev;
    int pending; /* lines admitted and not yet answered */
    int closed;  /* the peer went away: freed when the last answer comes */
    struct line_conn *next;
};

struct linesrc {
    struct evconnlistener *lev;
    struct tenant *t;
    char *tenant;
    struct line_conn *conns;
    int port;
};

static void
conn_free(struct line_conn *c)
{
    struct line_conn **pp = &c->src->conns;

    while (*pp != c) {
        pp = &(*pp)->next;
    }
    *pp = c->next;
    if (c->bev != NULL) {
        bufferevent_free(c->bev);
    }
    free(c);
}

/* Answer one line: what is "ok", "dup" or "error"; text the id or the reason. */
static void
reply(struct line_conn *c, const char *what, const char *text)
{
    if (!c->closed) {
        evbuffer_add_printf(bufferevent_get_output(c->bev), "%s %s\n", what, text);
    }
}

static void
on_admitted(void *arg, const struct admit_result *res)
{
    struct line_conn *c = arg;

    c->pending--;
    if (res->status == ADMIT_OK) {
        char id[32];

        snprintf(id, sizeof(id), "%lld", (long long)res->alerts[0].id);
        reply(c, res->duplicates ? "dup" : "ok", id);
    } else {
        reply(c, "error", "not stored; retry later");
    }
    if (c->closed && c->pending == 0) {
        conn_free(c);
    }
}

static void
on_read(struct bufferevent *bev, void *arg)
{
    struct line_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len;
    char *line;

    while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF)) != NULL) {
        struct alert *alerts = NULL;
        size_t n = 0;
        char *err = NULL;

        if (c->src->t == NULL) {
            c->src->t = tenant_find(c->src->tenant);
        }
        if (len > LINESRC_LINE_MAX) {
            reply(c, "error", "line too long");
        } else if (c->src->t == NULL) {
            reply(c, "error", "unknown tenant");
        } else if (linesrc_normalize(line, len, NULL, util_now_ms(), &alerts, &n, &err) == -1) {
            reply(c, "error", err);
            free(err);
        } else {
            c->pending++;
            admit_alerts(c->src->t, alerts, n, on_admitted, c);
        }
        free(line);
    }
    if (evbuffer_get_length(in) > LINESRC_LINE_MAX) { /* a line with no end in sight */
        reply(c, "error", "line too long");
        evbuffer_drain(in, evbuffer_get_length(in));
    }
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
    struct line_conn *c = arg;

    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        c->closed = 1;
        bufferevent_free(c->bev);
        c->bev = NULL;
        if (c->pending == 0) {
            conn_free(c);
        }
    }
}

static void
on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    struct linesrc *s = arg;
    struct line_conn *c = xcalloc(1, sizeof(*c));

    (void)lev;
    (void)sa;
    (void)salen;
    c->src = s;
    c->bev = bufferevent_socket_new(loop_base(), fd, BEV_OPT_CLOSE_ON_FREE);
    c->next = s->conns;
    s->conns = c;
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static int
linesrc_start(const struct config *cfg, void **state, char **errp)
{
    const struct linesrc_conf *lc = config_block(cfg, &linesrc_section);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss), len = 0;
    struct linesrc *s;

    *state = NULL;
    if (lc == NULL || lc->listen == NULL) {
        return 0;
    }
    if (util_parse_listen(lc->listen, &ss, &len, errp) == -1) {
        return -1;
    }
    s = xcalloc(1, sizeof(*s));
    s->tenant = xstrdup(lc->tenant);
    s->lev = evconnlistener_new_bind(loop_base(), on_accept, s,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 64,
                                     (struct sockaddr *)&ss, (int)len);
    if (s->lev == NULL) {
        free(s->tenant);
        free(s);
        return kg_err(errp, "linesrc.listen: %s: cannot listen", lc->listen);
    }
    if (getsockname(evconnlistener_get_fd(s->lev), (struct sockaddr *)&ss, &sl) == 0) {
        s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
    *state = s;
    return 0;
}

static void
linesrc_drain(void *state)
{
    struct linesrc *s = state;

    evconnlistener_disable(s->lev);
}

static void
linesrc_stop(void *state)
{
    struct linesrc *s = state;

    while (s->conns != NULL) {
        conn_free(s->conns); /* admit_shutdown has answered every pending line */
    }
    evconnlistener_free(s->lev);
    free(s->tenant);
    free(s);
}

static void
linesrc_describe(void *state, struct buf *b)
{
    struct linesrc *s = state;

    (void)!buf_printf(b, " linesrc_port=%d", s->port);
}

static const struct source linesrc_source = {
    "linesrc",
    "a test-only line source: source|source_id|title|severity over TCP",
    &linesrc_section,
    linesrc_start,
    linesrc_drain,
    linesrc_stop,
    linesrc_describe,
    linesrc_normalize,
    NULL,
};

static void linesrc_register(void) __attribute__((constructor));

static void
linesrc_register(void)
{
    plugin_add_source(&linesrc_source);
}
