/* notify.c: the playbooks' notify module. notify.email sends an RFC 5322 message over
 * SMTP with TLS (implicit or STARTTLS, with authentication); notify.teams, notify.slack
 * and notify.webhook post JSON to a destination named in the tenant's settings (a
 * generic webhook is signed with HMAC-SHA256 over its timestamp and body). Each is one
 * journaled effect with an id derived from the run and its journal step (the mail's
 * Message-ID, the webhook's delivery id and Idempotency-Key): a resend after a crash
 * carries the same id, so the receiver can drop the repeat, and a replay of a delivered
 * notification returns its recorded result without sending anything. The tenant's
 * contact chain for escalate{} and the standard message templates live here too. */
#include "connectors/notify.h"

#include <lauxlib.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "connectors/call.h"
#include "connectors/httpc.h"

#define NOTIFY_SUBJECT_MAX 998 /* bytes: one RFC 5322 line */
#define NOTIFY_BODY_MAX (256 * 1024)
#define NOTIFY_ADDR_MAX 254
#define NOTIFY_RCPT_MAX 50
#define NOTIFY_MAIL_ATTEMPTS 5
#define NOTIFY_VAR_MAX 4096

/* ---- settings: tenants.<id>.notify ---- */

struct notify_dest {
    char *name;
    char *kind; /* webhook, teams, slack */
    char *url;
    char *secret; /* as written (enc:v1:...); the plain one is in the state */
};

struct notify_contact {
    char *name;
    char *email;
    char **webhooks; /* destination names */
    size_t nwebhooks;
    double wait; /* seconds before the next contact */
    char *lang;
};

struct notify_conf {
    struct {
        char *url; /* smtps://host:465 or smtp://host:587 (STARTTLS) */
        char *user;
        char *password;
        char *from; /* the sender address */
        char *from_name;
        double timeout;
    } smtp;
    char *lang; /* ja (default) or en */
    struct notify_dest *dests;
    size_t ndests;
    struct notify_contact *chain;
    size_t nchain;
    int rounds; /* times the whole chain is walked before it is given up, default 1 */
};

struct notify_state {
    const struct notify_conf *conf;
    char *smtp_password; /* plain, registered for redaction */
    char **dest_secrets; /* plain, per destination (NULL when none) */
    size_t ndests;
};

static const struct config_field smtp_fields[] = {
    { "url", CONFIG_STRING, offsetof(struct notify_conf, smtp.url), 0, 0, NULL, 0 },
    { "user", CONFIG_STRING, offsetof(struct notify_conf, smtp.user), 0, 0, NULL, 0 },
    { "password", CONFIG_STRING, offsetof(struct notify_conf, smtp.password), 0, 0, NULL, 0 },
    { "from", CONFIG_STRING, offsetof(struct notify_conf, smtp.from), 0, 0, NULL, 0 },
    { "from_name", CONFIG_STRING, offsetof(struct notify_conf, smtp.from_name), 0, 0, NULL, 0 },
    { "timeout", CONFIG_DURATION, offsetof(struct notify_conf, smtp.timeout), 1, 300, NULL, 0 },
    CONFIG_FIELDS_END,
};

static const struct config_field dest_fields[] = {
    { "name", CONFIG_NAME, offsetof(struct notify_dest, name), 0, 0, NULL, 0 },
    { "kind", CONFIG_NAME, offsetof(struct notify_dest, kind), 0, 0, NULL, 0 },
    { "url", CONFIG_URL, offsetof(struct notify_dest, url), 0, 0, NULL, 0 },
    { "secret", CONFIG_STRING, offsetof(struct notify_dest, secret), 0, 0, NULL, 0 },
    CONFIG_FIELDS_END,
};

static const struct config_field contact_fields[] = {
    { "name", CONFIG_STRING, offsetof(struct notify_contact, name), 0, 0, NULL, 0 },
    { "email", CONFIG_STRING, offsetof(struct notify_contact, email), 0, 0, NULL, 0 },
    { "webhooks", CONFIG_HOSTS, offsetof(struct notify_contact, webhooks), 0, 0, NULL,
      offsetof(struct notify_contact, nwebhooks) },
    { "wait", CONFIG_DURATION, offsetof(struct notify_contact, wait), 1, 86400, NULL, 0 },
    { "lang", CONFIG_NAME, offsetof(struct notify_contact, lang), 0, 0, NULL, 0 },
    CONFIG_FIELDS_END,
};

static const struct config_field notify_fields[] = {
    { "smtp", CONFIG_TABLE, 0, 0, 0, smtp_fields, 0 },
    { "lang", CONFIG_NAME, offsetof(struct notify_conf, lang), 0, 0, NULL, 0 },
    { "webhooks", CONFIG_LIST, offsetof(struct notify_conf, dests), 0, sizeof(struct notify_dest),
      dest_fields, offsetof(struct notify_conf, ndests) },
    { "chain", CONFIG_LIST, offsetof(struct notify_conf, chain), 0, sizeof(struct notify_contact),
      contact_fields, offsetof(struct notify_conf, nchain) },
    { "rounds", CONFIG_INT, offsetof(struct notify_conf, rounds), 1, 10, NULL, 0 },
    CONFIG_FIELDS_END,
};

/* A mail address as a header and an envelope accept it: local@domain, printable ASCII
 * without spaces, quotes, angle brackets, commas or semicolons; at most 254 bytes. So a
 * CR or LF (header injection) can never reach the message. */
static int
addr_ok(const char *a)
{
    const char *at;
    size_t n = a != NULL ? strlen(a) : 0;

    if (n < 3 || n > NOTIFY_ADDR_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];

        if (c <= 0x20 || c >= 0x7f || strchr("<>()[]\\,;:\"", c) != NULL) {
            return 0;
        }
    }
    at = strchr(a, '@');
    return at != NULL && at != a && at[1] != '\0' && strchr(at + 1, '@') == NULL;
}

/* A display name or subject-like text for a header: no control character at all. */
static int
header_text_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c == 0x7f) {
            return 0;
        }
    }
    return 1;
}

static int
lang_ok(const char *l)
{
    return l == NULL || strcmp(l, "ja") == 0 || strcmp(l, "en") == 0;
}

static int
notify_check(void *p, char **errp)
{
    struct notify_conf *c = p;

    if (c->smtp.url != NULL) {
        if (strncmp(c->smtp.url, "smtp://", 7) != 0 && strncmp(c->smtp.url, "smtps://", 8) != 0) {
            return kg_err(errp, "smtp.url: expected smtps://host:465 (TLS) or smtp://host:587 "
                                "(STARTTLS, required)");
        }
        if (c->smtp.from == NULL || !addr_ok(c->smtp.from)) {
            return kg_err(errp, "smtp.from: expected the sender's address (soc@example.jp)");
        }
        if (c->smtp.from_name != NULL &&
            !header_text_ok(c->smtp.from_name, strlen(c->smtp.from_name))) {
            return kg_err(errp, "smtp.from_name: no control characters");
        }
        if (c->smtp.password != NULL && c->smtp.user == NULL) {
            return kg_err(errp, "smtp.password without smtp.user");
        }
    }
    if (c->smtp.timeout <= 0) {
        c->smtp.timeout = 30;
    }
    if (!lang_ok(c->lang)) {
        return kg_err(errp, "lang: \"ja\" or \"en\"");
    }
    if (c->rounds == 0) {
        c->rounds = 1;
    }
    for (size_t i = 0; i < c->ndests; i++) {
        struct notify_dest *d = &c->dests[i];

        if (d->name == NULL || d->url == NULL) {
            return kg_err(errp, "webhooks[%zu]: name and url are required", i + 1);
        }
        if (d->kind == NULL) {
            d->kind = xstrdup("webhook");
        }
        if (strcmp(d->kind, "webhook") != 0 && strcmp(d->kind, "teams") != 0 &&
            strcmp(d->kind, "slack") != 0) {
            return kg_err(errp, "webhooks[%zu].kind: \"webhook\", \"teams\" or \"slack\"", i + 1);
        }
        if (strcmp(d->kind, "webhook") == 0 && d->secret == NULL) {
            return kg_err(errp, "webhooks[%zu].secret: a generic webhook is signed: set its secret",
                          i + 1);
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(c->dests[k].name, d->name) == 0) {
                return kg_err(errp, "webhooks[%zu]: the name %s is used twice", i + 1, d->name);
            }
        }
    }
    for (size_t i = 0; i < c->nchain; i++) {
        struct notify_contact *k = &c->chain[i];

        if (k->name == NULL || !header_text_ok(k->name, strlen(k->name))) {
            return kg_err(errp, "chain[%zu].name: required, without control characters", i + 1);
        }
        if (k->email == NULL && k->nwebhooks == 0) {
            return kg_err(errp, "chain[%zu]: give an email or webhooks to reach %s", i + 1,
                          k->name);
        }
        if (k->email != NULL && !addr_ok(k->email)) {
            return kg_err(errp, "chain[%zu].email: not a mail address", i + 1);
        }
        if (k->email != NULL && c->smtp.url == NULL) {
            return kg_err(errp, "chain[%zu].email: no smtp settings to send it with", i + 1);
        }
        for (size_t w = 0; w < k->nwebhooks; w++) {
            int found = 0;

            for (size_t d = 0; d < c->ndests; d++) {
                found |= strcmp(c->dests[d].name, k->webhooks[w]) == 0;
            }
            if (!found) {
                return kg_err(errp, "chain[%zu].webhooks: no webhook named %s", i + 1,
                              k->webhooks[w]);
            }
        }
        if (k->wait == 0) {
            k->wait = 600;
        }
        if (k->wait > 86400) {
            return kg_err(errp, "chain[%zu].wait: at most one day (\"24h\")", i + 1);
        }
        if (!lang_ok(k->lang)) {
            return kg_err(errp, "chain[%zu].lang: \"ja\" or \"en\"", i + 1);
        }
    }
    return 0;
}

static const char notify_example[] =
    "--         -- Notifications and the urgent contact chain (escalate{}).\n"
    "--         notify = {\n"
    "--             smtp = { url = \"smtps://mail.example.jp:465\", user = \"soc\",\n"
    "--                      password = \"enc:v1:...\", from = \"soc@example.jp\" },\n"
    "--             webhooks = {\n"
    "--                 { name = \"soc-teams\", kind = \"teams\",\n"
    "--                   url = \"https://hooks.example.jp/workflows/soc\" },\n"
    "--                 { name = \"ticketing\", kind = \"webhook\",\n"
    "--                   url = \"https://tickets.example.jp/hooks/kagari\",\n"
    "--                   secret = \"enc:v1:...\" },\n"
    "--             },\n"
    "--             chain = {\n"
    "--                 { name = \"Duty officer\", email = \"duty@example.jp\", wait = \"10m\" },\n"
    "--                 { name = \"CISO\", email = \"ciso@example.jp\",\n"
    "--                   webhooks = { \"soc-teams\" }, wait = \"15m\" },\n"
    "--             },\n"
    "--         },\n";

static const struct config_section notify_section = {
    "notify", notify_fields, sizeof(struct notify_conf), notify_check, notify_example,
};

static void
notify_tenant_close(void *p)
{
    struct notify_state *st = p;

    if (st == NULL) {
        return;
    }
    if (st->smtp_password != NULL) {
        secret_unregister(st->smtp_password);
        secret_free(st->smtp_password);
    }
    for (size_t i = 0; i < st->ndests; i++) {
        if (st->dest_secrets[i] != NULL) {
            secret_unregister(st->dest_secrets[i]);
            secret_free(st->dest_secrets[i]);
        }
    }
    free(st->dest_secrets);
    free(st);
}

static int
notify_tenant_open(const void *conf, void **state, char **errp)
{
    const struct notify_conf *c = conf;
    struct notify_state *st = xcalloc(1, sizeof(*st));

    st->conf = c;
    st->ndests = c->ndests;
    st->dest_secrets = xcalloc(c->ndests + 1, sizeof(char *));
    if (c->smtp.password != NULL) {
        if ((st->smtp_password = secret_decrypt(c->smtp.password, errp)) == NULL) {
            goto fail;
        }
        secret_register(st->smtp_password);
    }
    for (size_t i = 0; i < c->ndests; i++) {
        if (c->dests[i].secret == NULL) {
            continue;
        }
        if ((st->dest_secrets[i] = secret_decrypt(c->dests[i].secret, errp)) == NULL) {
            goto fail;
        }
        secret_register(st->dest_secrets[i]);
    }
    *state = st;
    return 0;
fail:
    notify_tenant_close(st);
    return -1;
}

static struct {
    unsigned long long mail_sent, mail_failed, mail_retried, hooks_sent;
} stats;

/* ---- message building ---- */

static void
b64(struct buf *b, const unsigned char *p, size_t n)
{
    size_t cap = 4 * ((n + 2) / 3) + 1;
    char *out = xmalloc(cap);
    int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);

    (void)!buf_append(b, out, (size_t)len);
    free(out);
}

/* Append text as an RFC 2047 header value: as it is when it is printable ASCII, else
 * as UTF-8 "B" encoded words of at most 75 characters, cut only between characters and
 * folded with CRLF SP. */
static void
encode_header(struct buf *b, const char *s)
{
    size_t n = strlen(s), i = 0;
    int ascii = 1;

    for (size_t k = 0; k < n; k++) {
        ascii &= (unsigned char)s[k] >= 0x20 && (unsigned char)s[k] < 0x7f;
    }
    if (ascii && n <= 900) {
        (void)!buf_append(b, s, n);
        return;
    }
    while (i < n) {
        size_t take = 0;

        /* 39 bytes encode to 52 characters: with "=?UTF-8?B?", "?=" and "Subject: ", 73. */
        while (i + take < n) {
            size_t clen = 1;
            unsigned char c = (unsigned char)s[i + take];

            if (c >= 0xf0) {
                clen = 4;
            } else if (c >= 0xe0) {
                clen = 3;
            } else if (c >= 0xc0) {
                clen = 2;
            }
            if (take + clen > 39) {
                break;
            }
            take += clen;
        }
        if (take == 0) {
            take = n - i < 39 ? n - i : 39;
        }
        if (i > 0) {
            (void)!buf_puts(b, "\r\n ");
        }
        (void)!buf_puts(b, "=?UTF-8?B?");
        b64(b, (const unsigned char *)s + i, take);
        (void)!buf_puts(b, "?=");
        i += take;
    }
}

/* The domain part of the sender, for the Message-ID. */
static const char *
from_domain(const char *from)
{
    const char *at = strchr(from, '@');

    return at != NULL ? at + 1 : "kagari.invalid";
}

/* The whole message: headers, then the body as UTF-8 text in base64 (any line length,
 * any byte survives every relay; CR LF lines). Malloc'd. */
static char *
build_message(const struct notify_conf *c, const char *const *to, size_t nto, const char *subject,
              const char *body, const char *lang, const char *message_id, int64_t date_ms,
              size_t *len)
{
    struct buf b, text;
    char date[64];
    time_t t = (time_t)(date_ms / 1000);
    struct tm tm;
    static const char *const days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

    gmtime_r(&t, &tm);
    snprintf(date, sizeof(date), "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    buf_init(&b, 0);
    (void)!buf_puts(&b, "From: ");
    if (c->smtp.from_name != NULL) {
        encode_header(&b, c->smtp.from_name);
        (void)!buf_printf(&b, " <%s>\r\n", c->smtp.from);
    } else {
        (void)!buf_printf(&b, "%s\r\n", c->smtp.from);
    }
    (void)!buf_puts(&b, "To: ");
    for (size_t i = 0; i < nto; i++) {
        (void)!buf_printf(&b, "%s%s", i > 0 ? ",\r\n " : "", to[i]);
    }
    (void)!buf_puts(&b, "\r\nSubject: ");
    encode_header(&b, subject);
    (void)!buf_printf(&b,
                      "\r\nDate: %s\r\nMessage-ID: %s\r\nMIME-Version: 1.0\r\n"
                      "Content-Type: text/plain; charset=UTF-8\r\n"
                      "Content-Transfer-Encoding: base64\r\nContent-Language: %s\r\n"
                      "Auto-Submitted: auto-generated\r\n\r\n",
                      date, message_id, lang);
    /* Lines end in CR LF in the text that is encoded, as RFC 5322 asks of text/plain. */
    buf_init(&text, 0);
    for (const char *p = body; *p != '\0'; p++) {
        if (*p == '\n' && (p == body || p[-1] != '\r')) {
            (void)!buf_puts(&text, "\r\n");
        } else {
            (void)!buf_append(&text, p, 1);
        }
    }
    for (size_t off = 0; off < text.len; off += 57) {
        size_t k = text.len - off < 57 ? text.len - off : 57;

        b64(&b, (const unsigned char *)text.data + off, k);
        (void)!buf_puts(&b, "\r\n");
    }
    buf_free(&text);
    *len = b.len;
    return buf_take(&b);
}

/* ---- notify.email: one SMTP submission as an effect ---- */

struct mail_args {
    const struct notify_conf *conf;
    const struct notify_state *st;
    const char *const *to;
    size_t nto;
    const char *subject, *body, *lang, *message_id;
};

struct mail_op {
    struct effect *ef;
    struct httpc_call *http;
    struct event *timer;
    char *msg;
    size_t msg_len;
    char **rcpt;
    char *url, *user, *password, *from, *message_id;
    double timeout;
    int attempt;
};

static void
mail_free(struct mail_op *m)
{
    if (m->http != NULL) {
        httpc_cancel(m->http);
    }
    if (m->timer != NULL) {
        event_free(m->timer);
    }
    for (size_t i = 0; m->rcpt != NULL && m->rcpt[i] != NULL; i++) {
        free(m->rcpt[i]);
    }
    free(m->rcpt);
    free(m->msg);
    free(m->url);
    free(m->user);
    free(m->password);
    free(m->from);
    free(m->message_id);
    free(m);
}

static void mail_send(struct mail_op *m);

static void
mail_done(void *arg, const struct httpc_response *resp)
{
    struct mail_op *m = arg;
    struct effect *ef = m->ef;
    char *out;

    m->http = NULL;
    m->attempt++;
    if (resp->error == NULL) {
        struct buf b;

        buf_init(&b, 0);
        (void)!buf_puts(&b, "{\"message_id\":");
        (void)!buf_json_string(&b, m->message_id, strlen(m->message_id));
        (void)!buf_printf(&b, ",\"accepted\":true,\"attempts\":%d}", m->attempt);
        stats.mail_sent++;
        out = buf_take(&b);
        mail_free(m);
        effect_done(ef, 1, out);
        free(out);
        return;
    }
    /* 5xx is the server's final no (bad recipient, refused sender): not retried. A
     * refused or lost connection, a timeout and a 4xx are transient. */
    if (resp->status < 500 && m->attempt < NOTIFY_MAIL_ATTEMPTS) {
        int64_t delay = (int64_t)1000 << (m->attempt - 1);
        struct timeval tv = { (time_t)(delay / 1000), (suseconds_t)((delay % 1000) * 1000) };

        stats.mail_retried++;
        log_warn("notify.email attempt=%d status=%d error=%s retry_in_ms=%lld", m->attempt,
                 resp->status, log_quote(resp->error), (long long)delay);
        effect_wait(ef, EFFECT_WAIT_RETRY, resp->status, util_now_ms() + delay);
        evtimer_add(m->timer, &tv);
        return;
    }
    stats.mail_failed++;
    out = xasprintf("notify.email: %s%s%s (after %d attempt%s)", resp->error,
                    resp->status > 0 ? ", SMTP " : "",
                    resp->status > 0 ? (resp->status >= 500 ? "permanent failure" : "reply") : "",
                    m->attempt, m->attempt == 1 ? "" : "s");
    mail_free(m);
    effect_done(ef, 0, out);
    free(out);
}

static void
mail_send(struct mail_op *m)
{
    struct httpc_mail rq = { 0 };
    char *err = NULL;

    rq.url = m->url;
    rq.user = m->user;
    rq.password = m->password;
    rq.from = m->from;
    rq.rcpt = (const char *const *)m->rcpt;
    rq.body = m->msg;
    rq.body_len = m->msg_len;
    rq.timeout = m->timeout;
    rq.ca_file = call_ca_file();
    m->http = httpc_send_mail(&rq, mail_done, m, &err);
    if (m->http == NULL) {
        struct effect *ef = m->ef;
        char *out = xasprintf("notify.email: %s", err ? err : "cannot send");

        free(err);
        mail_free(m);
        effect_done(ef, 0, out);
        free(out);
    }
}

static void
mail_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    mail_send(arg);
}

static void
mail_start(void *op)
{
    mail_send(op);
}

static void
mail_cancel(void *op)
{
    mail_free(op);
}

static char *
mail_check(struct run *r, void *arg)
{
    const struct mail_args *a = arg;

    (void)r;
    if (a->conf == NULL || a->conf->smtp.url == NULL) {
        return xstrdup("notify.email: no smtp settings for this tenant (tenants.<id>.notify.smtp)");
    }
    return NULL;
}

static void *
mail_open(struct effect *ef, void *arg)
{
    const struct mail_args *a = arg;
    struct mail_op *m = xcalloc(1, sizeof(*m));

    m->ef = ef;
    m->url = xstrdup(a->conf->smtp.url);
    m->user = a->conf->smtp.user ? xstrdup(a->conf->smtp.user) : NULL;
    m->password = a->st != NULL && a->st->smtp_password ? xstrdup(a->st->smtp_password) : NULL;
    m->from = xasprintf("<%s>", a->conf->smtp.from);
    m->message_id = xstrdup(a->message_id);
    m->timeout = a->conf->smtp.timeout;
    m->rcpt = xcalloc(a->nto + 1, sizeof(char *));
    for (size_t i = 0; i < a->nto; i++) {
        m->rcpt[i] = xasprintf("<%s>", a->to[i]);
    }
    m->msg = build_message(a->conf, a->to, a->nto, a->subject, a->body, a->lang, a->message_id,
                           util_now_ms(), &m->msg_len);
    m->timer = evtimer_new(loop_base(), mail_timer, m);
    return m;
}

/* The field key of the table at 1 as a string of at most max bytes without NUL, or
 * NULL when absent; raises otherwise. */
static const char *
opt_string(lua_State *L, const char *fn, const char *key, size_t max, int required)
{
    const char *s;
    size_t n;

    lua_getfield(L, 1, key);
    if (lua_isnil(L, -1) && !required) {
        lua_pop(L, 1);
        return NULL;
    }
    if (lua_type(L, -1) != LUA_TSTRING) {
        luaL_error(L, "%s: %s: expected a string", fn, key);
    }
    s = lua_tolstring(L, -1, &n);
    if (n > max || strlen(s) != n) {
        luaL_error(L, "%s: %s: more than %d bytes or a NUL byte", fn, key, (int)max);
    }
    {
        /* Invalid UTF-8 becomes U+FFFD: a header, a JSON body and the journal stay
         * valid text whatever the playbook passed. */
        size_t cn = 0;
        char *clean = util_utf8_clean(s, n, &cn);

        if (cn != n || memcmp(clean, s, n) != 0) {
            lua_pushlstring(L, clean, cn);
            s = lua_tostring(L, -1);
        }
        free(clean);
    }
    return s; /* kept alive on the stack */
}

/* The tenant's notify settings for the running playbook; raises outside a run. */
static const struct notify_conf *
run_conf(lua_State *L, const char *fn, struct run **rp, struct notify_state **stp)
{
    struct run *r = run_from_lua(L);

    if (r == NULL) {
        luaL_error(L, "%s: only inside a playbook run", fn);
    }
    *rp = r;
    if (stp != NULL) {
        *stp = tenant_state(run_tenant(r), &notify_section);
    }
    return tenant_conf(run_tenant(r), &notify_section);
}

/* notify.email{ to = address or list, subject =, body =, lang = "ja"|"en" } ->
 * { message_id =, accepted = true, attempts = n } | nil, err. */
static int
l_notify_email(lua_State *L)
{
    static const char *const keys[] = { "to", "subject", "body", "lang", NULL };
    const char *to[NOTIFY_RCPT_MAX];
    struct mail_args a = { 0 };
    struct effect_spec es = { 0 };
    struct notify_state *st;
    struct run *r;
    const struct notify_conf *c = run_conf(L, "notify.email", &r, &st);
    size_t nto = 0;
    struct buf req;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    if (lcheck_unknown_key(L, 1, keys)) {
        return luaL_error(L, "notify.email: unknown field %s", lua_tostring(L, -1));
    }
    lua_getfield(L, 1, "to"); /* 2 */
    if (lua_type(L, 2) == LUA_TSTRING) {
        to[nto++] = lua_tostring(L, 2);
    } else if (lua_istable(L, 2)) {
        lua_Unsigned n = lua_rawlen(L, 2);

        if (n == 0 || n > NOTIFY_RCPT_MAX) {
            return luaL_error(L, "notify.email: to: 1 to %d addresses", NOTIFY_RCPT_MAX);
        }
        for (lua_Unsigned i = 1; i <= n; i++) {
            lua_rawgeti(L, 2, (lua_Integer)i);
            if (lua_type(L, -1) != LUA_TSTRING) {
                return luaL_error(L, "notify.email: to[%d]: expected an address", (int)i);
            }
            to[nto++] = lua_tostring(L, -1); /* kept on the stack */
        }
    } else {
        return luaL_error(L, "notify.email: to: expected an address or a list of addresses");
    }
    for (size_t i = 0; i < nto; i++) {
        if (!addr_ok(to[i])) {
            return luaL_error(L, "notify.email: to: not a mail address (local@domain, no spaces, "
                                 "line breaks or brackets)");
        }
    }
    a.subject = opt_string(L, "notify.email", "subject", NOTIFY_SUBJECT_MAX, 1);
    if (!header_text_ok(a.subject, strlen(a.subject))) {
        return luaL_error(L, "notify.email: subject: line breaks and control characters are "
                             "refused (they would forge headers)");
    }
    a.body = opt_string(L, "notify.email", "body", NOTIFY_BODY_MAX, 1);
    a.lang = opt_string(L, "notify.email", "lang", 8, 0);
    if (a.lang == NULL) {
        a.lang = c != NULL && c->lang != NULL ? c->lang : "ja";
    }
    luaL_argcheck(L, lang_ok(a.lang), 1, "lang: \"ja\" or \"en\"");
    a.conf = c;
    a.st = st;
    a.to = to;
    a.nto = nto;
    lua_pushfstring(
        L, "<kagari.%s.%d.%d@%s>", tenant_id(run_tenant(r)), (int)run_id(r), run_next_step(r),
        c != NULL && c->smtp.from != NULL ? from_domain(c->smtp.from) : "kagari.invalid");
    a.message_id = lua_tostring(L, -1);
    buf_init(&req, 0);
    (void)!buf_puts(&req, "{\"to\":[");
    for (size_t i = 0; i < nto; i++) {
        (void)!buf_puts(&req, i > 0 ? "," : "");
        (void)!buf_json_string(&req, to[i], strlen(to[i]));
    }
    (void)!buf_puts(&req, "],\"subject\":");
    (void)!buf_json_string(&req, a.subject, strlen(a.subject));
    (void)!buf_puts(&req, ",\"body\":");
    (void)!buf_json_string(&req, a.body, strlen(a.body));
    (void)!buf_printf(&req, ",\"lang\":\"%s\",\"message_id\":", a.lang);
    (void)!buf_json_string(&req, a.message_id, strlen(a.message_id));
    (void)!buf_puts(&req, "}");
    lua_pushlstring(L, req.data, req.len);
    buf_free(&req);
    es.kind = "notify.email";
    es.request = lua_tostring(L, -1);
    /* A resend carries the same Message-ID: safe to repeat for a receiver that
     * deduplicates, and what a crash in flight needs to deliver at all. */
    es.flags = EFFECT_OUTSIDE | EFFECT_IDEMPOTENT | EFFECT_NOTICE;
    es.check = mail_check;
    es.open = mail_open;
    es.start = mail_start;
    es.cancel = mail_cancel;
    es.arg = &a;
    return effect_run(L, &es);
}

/* ---- webhooks: Teams, Slack and generic signed JSON ---- */

static const char *
hook_base(const struct tenant *t)
{
    (void)t;
    return "";
}

static const struct call_api hook_api = {
    "notify", hook_base, NULL, NULL, NULL, NULL, NULL,
};

/* 2xx is delivered: {"status":N,"delivery":id}. */
static int
hook_map(struct call *c, const struct httpc_response *resp, char **result)
{
    if (resp->status < 200 || resp->status > 299) {
        *result = call_error_text(c, resp);
        return 0;
    }
    stats.hooks_sent++;
    *result =
        xasprintf("{\"status\":%d,\"delivery\":\"%s\"}", resp->status, (const char *)call_ud(c));
    return 1;
}

/* Lower-case hex HMAC-SHA256 of "<ts>.<body>" under key. */
static void
sign(const char *key, const char *ts, const char *body, char out[65])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    struct buf m;

    buf_init(&m, 0);
    (void)!buf_printf(&m, "%s.", ts);
    (void)!buf_puts(&m, body);
    HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)m.data, m.len, mac, &len);
    buf_free(&m);
    for (unsigned int i = 0; i < len && i < 32; i++) {
        snprintf(out + 2 * i, 3, "%02x", mac[i]);
    }
    out[64] = '\0';
}

/* Push json.encode(value at idx). */
static const char *
push_json(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "json");
    lua_getfield(L, -1, "encode");
    lua_pushvalue(L, idx);
    lua_call(L, 1, 1);
    lua_replace(L, -3);
    lua_pop(L, 1);
    return lua_tostring(L, -1);
}

/* Push a JSON string of s (NULL: null). */
static void
push_jstr(struct buf *b, const char *s)
{
    if (s == NULL) {
        (void)!buf_puts(b, "null");
    } else {
        (void)!buf_json_string(b, s, strlen(s));
    }
}

/* notify.webhook/teams/slack{ to = destination name, title =, text =, link =, data = }. */
static int
hook_send(lua_State *L, const char *kind)
{
    static const char *const keys[] = { "to", "title", "text", "link", "data", NULL };
    char fn[32], sig[65], ts[24];
    struct notify_state *st;
    struct run *r;
    const struct notify_conf *c;
    const struct notify_dest *d = NULL;
    const char *name, *title, *text, *link, *data = NULL, *delivery, *secret = NULL;
    const char *headers[4];
    struct call_spec spec = { 0 };
    struct buf b;
    size_t di = 0;

    snprintf(fn, sizeof(fn), "notify.%s", kind);
    c = run_conf(L, fn, &r, &st);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    if (lcheck_unknown_key(L, 1, keys)) {
        return luaL_error(L, "%s: unknown field %s", fn, lua_tostring(L, -1));
    }
    name = opt_string(L, fn, "to", 64, 1);
    title = opt_string(L, fn, "title", 1024, 0);
    text = opt_string(L, fn, "text", 64 * 1024, 1);
    link = opt_string(L, fn, "link", 2048, 0);
    if (link != NULL && strncmp(link, "https://", 8) != 0 && strncmp(link, "http://", 7) != 0) {
        return luaL_error(L, "%s: link: expected an http(s) URL", fn);
    }
    lua_getfield(L, 1, "data");
    if (!lua_isnil(L, -1)) {
        if (strcmp(kind, "webhook") != 0) {
            return luaL_error(L, "%s: data: only for notify.webhook", fn);
        }
        luaL_argcheck(L, lua_istable(L, -1), 1, "data: expected a table");
        data = push_json(L, -1);
    }
    for (size_t i = 0; c != NULL && i < c->ndests; i++) {
        if (strcmp(c->dests[i].name, name) == 0) {
            d = &c->dests[i];
            di = i;
        }
    }
    if (d == NULL) {
        luaL_pushfail(L);
        lua_pushfstring(L, "%s: no webhook named %s in this tenant's notify settings", fn, name);
        return 2;
    }
    if (strcmp(d->kind, kind) != 0) {
        return luaL_error(L, "%s: %s is a %s destination", fn, name, d->kind);
    }
    lua_pushfstring(L, "kagari-%s-%d-%d", tenant_id(run_tenant(r)), (int)run_id(r),
                    run_next_step(r));
    delivery = lua_tostring(L, -1);
    buf_init(&b, 0);
    if (strcmp(kind, "teams") == 0) {
        /* A Workflows webhook takes a message with an Adaptive Card attachment. */
        (void)!buf_puts(&b, "{\"type\":\"message\",\"attachments\":[{\"contentType\":"
                            "\"application/vnd.microsoft.card.adaptive\",\"contentUrl\":null,"
                            "\"content\":{\"$schema\":"
                            "\"http://adaptivecards.io/schemas/adaptive-card.json\","
                            "\"type\":\"AdaptiveCard\",\"version\":\"1.4\",\"body\":[");
        if (title != NULL) {
            (void)!buf_puts(&b, "{\"type\":\"TextBlock\",\"size\":\"Medium\",\"weight\":"
                                "\"Bolder\",\"wrap\":true,\"text\":");
            push_jstr(&b, title);
            (void)!buf_puts(&b, "},");
        }
        (void)!buf_puts(&b, "{\"type\":\"TextBlock\",\"wrap\":true,\"text\":");
        push_jstr(&b, text);
        (void)!buf_puts(&b, "}]");
        if (link != NULL) {
            (void)!buf_puts(&b, ",\"actions\":[{\"type\":\"Action.OpenUrl\",\"title\":\"Open\","
                                "\"url\":");
            push_jstr(&b, link);
            (void)!buf_puts(&b, "}]");
        }
        (void)!buf_puts(&b, "}}]}");
    } else if (strcmp(kind, "slack") == 0) {
        (void)!buf_puts(&b, "{\"text\":");
        push_jstr(&b, title != NULL ? title : text);
        (void)!buf_puts(&b, ",\"blocks\":[");
        if (title != NULL) {
            (void)!buf_puts(&b, "{\"type\":\"header\",\"text\":{\"type\":\"plain_text\",\"text\":");
            push_jstr(&b, title);
            (void)!buf_puts(&b, "}},");
        }
        (void)!buf_puts(&b, "{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":");
        push_jstr(&b, text);
        (void)!buf_puts(&b, "}}");
        if (link != NULL) {
            (void)!buf_puts(&b, ",{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":");
            push_jstr(&b, link);
            (void)!buf_puts(&b, "}}");
        }
        (void)!buf_puts(&b, "]}");
    } else {
        (void)!buf_puts(&b, "{\"id\":");
        push_jstr(&b, delivery);
        (void)!buf_puts(&b, ",\"tenant\":");
        push_jstr(&b, tenant_id(run_tenant(r)));
        (void)!buf_printf(&b, ",\"run\":%lld,\"playbook\":", (long long)run_id(r));
        push_jstr(&b, run_playbook_name(r));
        (void)!buf_puts(&b, ",\"title\":");
        push_jstr(&b, title);
        (void)!buf_puts(&b, ",\"text\":");
        push_jstr(&b, text);
        (void)!buf_puts(&b, ",\"link\":");
        push_jstr(&b, link);
        (void)!buf_puts(&b, ",\"data\":");
        (void)!buf_puts(&b, data != NULL ? data : "null");
        (void)!buf_puts(&b, "}");
    }
    lua_pushlstring(L, b.data, b.len);
    buf_free(&b);
    spec.body = lua_tostring(L, -1);
    if (st != NULL && di < st->ndests) {
        secret = st->dest_secrets[di];
    }
    /* The signature covers the time it was made, so a receiver can refuse old ones;
     * it is not journaled (a resend after a crash is signed afresh). */
    snprintf(ts, sizeof(ts), "%lld", (long long)(util_now_ms() / 1000));
    {
        int nh = 0;

        lua_pushfstring(L, "X-Kagari-Delivery: %s", delivery);
        headers[nh++] = lua_tostring(L, -1);
        if (secret != NULL) {
            sign(secret, ts, spec.body, sig);
            lua_pushfstring(L, "X-Kagari-Timestamp: %s", ts);
            headers[nh++] = lua_tostring(L, -1);
            lua_pushfstring(L, "X-Kagari-Signature: sha256=%s", sig);
            headers[nh++] = lua_tostring(L, -1);
        }
        headers[nh] = NULL;
    }
    spec.kind = strcmp(kind, "webhook") == 0 ? "notify.webhook"
                : strcmp(kind, "teams") == 0 ? "notify.teams"
                                             : "notify.slack";
    spec.api = &hook_api;
    spec.limiter = "notify";
    spec.prio = LIMITER_CONTAIN;
    spec.method = "POST";
    spec.path = d->url;
    spec.map = hook_map;
    spec.ud = (void *)delivery; /* on the Lua stack until the call returns */
    spec.headers = headers;
    spec.idempotency_key = delivery;
    /* A webhook URL is a credential (Slack's and Teams' carry their own signature): the
     * journal names the destination instead. */
    lua_pushfstring(L, "notify:%s", d->name);
    spec.journal_url = lua_tostring(L, -1);
    spec.notice = 1;
    return call_effect(L, &spec);
}

static int
l_notify_webhook(lua_State *L)
{
    return hook_send(L, "webhook");
}

static int
l_notify_teams(lua_State *L)
{
    return hook_send(L, "teams");
}

static int
l_notify_slack(lua_State *L)
{
    return hook_send(L, "slack");
}

/* ---- templates ---- */

struct template
{
    const char *name, *lang, *subject, *body;
};

static const struct template templates[] = {
    { "escalation", "ja", "【緊急】{{subject}}",
      "{{contact}} 様\n\n"
      "セキュリティインシデントについて緊急のご連絡です。\n\n"
      "件名: {{subject}}\n"
      "重要度: {{level}}\n"
      "理由: {{reason}}\n\n"
      "内容を確認されたら、次のリンクから受領を登録してください（対応の承認ではありません）:\n"
      "{{link}}\n\n"
      "受領が登録されるまで、連絡先リストの次の方にも順にご連絡します。\n" },
    { "escalation", "en", "[URGENT] {{subject}}",
      "Dear {{contact}},\n\n"
      "This is an urgent notice about a security incident.\n\n"
      "Subject: {{subject}}\n"
      "Level: {{level}}\n"
      "Reason: {{reason}}\n\n"
      "Once you have read it, please acknowledge it here (this approves no action):\n"
      "{{link}}\n\n"
      "Until someone acknowledges, the next people on the contact list are notified in "
      "turn.\n" },
    { "approval_request", "ja", "【承認依頼】{{title}}",
      "次の対応について承認をお願いします。\n\n"
      "対応: {{title}}\n"
      "詳細: {{detail}}\n"
      "期限: {{deadline}}\n\n"
      "ポータルにログインして判断してください:\n{{link}}\n" },
    { "approval_request", "en", "[Approval requested] {{title}}",
      "Your approval is requested for the following action.\n\n"
      "Action: {{title}}\n"
      "Detail: {{detail}}\n"
      "Deadline: {{deadline}}\n\n"
      "Log in to the portal to decide:\n{{link}}\n" },
    { "containment_done", "ja", "【封じ込め完了】{{subject}}",
      "次の封じ込め対応が完了しました。\n\n"
      "件名: {{subject}}\n"
      "対象: {{target}}\n"
      "対応: {{action}}\n"
      "時刻: {{time}}\n" },
    { "containment_done", "en", "[Containment done] {{subject}}",
      "The following containment action has been completed.\n\n"
      "Subject: {{subject}}\n"
      "Target: {{target}}\n"
      "Action: {{action}}\n"
      "Time: {{time}}\n" },
};

/* Push text with every {{name}} replaced by vars[name] (the table at vidx; a missing
 * one becomes "-"). In a header value (subject) line breaks of a value become spaces. */
static void
expand(lua_State *L, const char *text, int vidx, int header)
{
    luaL_Buffer lb;
    const char *p = text;

    luaL_buffinit(L, &lb);
    while (*p != '\0') {
        const char *open = strstr(p, "{{"), *close;

        if (open == NULL || (close = strstr(open, "}}")) == NULL) {
            luaL_addstring(&lb, p);
            break;
        }
        luaL_addlstring(&lb, p, (size_t)(open - p));
        lua_pushlstring(L, open + 2, (size_t)(close - open - 2));
        lua_gettable(L, vidx);
        if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
            size_t n;
            const char *v = lua_tolstring(L, -1, &n);

            if (n > NOTIFY_VAR_MAX) {
                n = NOTIFY_VAR_MAX;
            }
            for (size_t i = 0; i < n; i++) {
                char ch = v[i];

                if (header && (ch == '\r' || ch == '\n' || ch == '\t')) {
                    ch = ' ';
                }
                luaL_addchar(&lb, ch);
            }
        } else {
            luaL_addchar(&lb, '-');
        }
        lua_pop(L, 1);
        p = close + 2;
    }
    luaL_pushresult(&lb);
}

/* notify.template(name, vars[, lang]) -> subject, body. Not an effect: the same
 * arguments always give the same text. */
static int
l_notify_template(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    const char *lang;
    struct run *r = run_from_lua(L);
    const struct notify_conf *c = r != NULL ? tenant_conf(run_tenant(r), &notify_section) : NULL;

    luaL_checktype(L, 2, LUA_TTABLE);
    lang = luaL_optstring(L, 3, c != NULL && c->lang != NULL ? c->lang : "ja");
    luaL_argcheck(L, lang_ok(lang), 3, "\"ja\" or \"en\"");
    for (size_t i = 0; i < sizeof(templates) / sizeof(templates[0]); i++) {
        if (strcmp(templates[i].name, name) == 0 && strcmp(templates[i].lang, lang) == 0) {
            expand(L, templates[i].subject, 2, 1);
            expand(L, templates[i].body, 2, 0);
            return 2;
        }
    }
    return luaL_error(L,
                      "notify.template: no template %s (escalation, approval_request, "
                      "containment_done)",
                      name);
}

/* A webhook destination's kind ("webhook", "teams", "slack") by its name. */
static const char *
dest_kind(const struct notify_conf *c, const char *name)
{
    for (size_t d = 0; c != NULL && d < c->ndests; d++) {
        if (strcmp(c->dests[d].name, name) == 0) {
            return c->dests[d].kind;
        }
    }
    return "webhook";
}

/* One contact as escalate{} takes it: { name =, email =, webhooks = { { to =, kind = } },
 * wait = s, lang = }, pushed. */
static void
push_contact(lua_State *L, const struct notify_conf *c, const char *name, const char *email,
             const char *const *hooks, size_t nhooks, double wait, const char *lang)
{
    lua_newtable(L);
    lua_pushstring(L, name);
    lua_setfield(L, -2, "name");
    if (email != NULL) {
        lua_pushstring(L, email);
        lua_setfield(L, -2, "email");
    }
    lua_newtable(L);
    for (size_t w = 0; w < nhooks; w++) {
        lua_newtable(L);
        lua_pushstring(L, hooks[w]);
        lua_setfield(L, -2, "to");
        lua_pushstring(L, dest_kind(c, hooks[w]));
        lua_setfield(L, -2, "kind");
        lua_rawseti(L, -2, (lua_Integer)w + 1);
    }
    lua_setfield(L, -2, "webhooks");
    lua_pushnumber(L, wait);
    lua_setfield(L, -2, "wait");
    lua_pushstring(L, lang != NULL ? lang : c != NULL && c->lang != NULL ? c->lang : "ja");
    lua_setfield(L, -2, "lang");
}

/* The chain people saved in the portal ("notify.chain": a JSON array of {name, email,
 * webhooks: [names], wait: seconds, lang}, checked when it was saved), pushed into the
 * table on top. 1 when there is one, 0 when the configuration's applies. */
static int
push_saved_chain(lua_State *L, struct tenant *t, const struct notify_conf *c)
{
    char *text = tenant_setting(t, "notify.chain");
    cJSON *arr = NULL, *k;
    lua_Integer i = 0;

    if (text == NULL || json_parse_strict(text, strlen(text), 8, &arr, NULL) == -1 ||
        !cJSON_IsArray(arr)) {
        free(text);
        cJSON_Delete(arr);
        return 0;
    }
    cJSON_ArrayForEach(k, arr)
    {
        const char *hooks[16];
        size_t nh = 0;
        const cJSON *w, *wait = cJSON_GetObjectItemCaseSensitive(k, "wait");

        cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(k, "webhooks"))
        {
            if (cJSON_IsString(w) && nh < sizeof(hooks) / sizeof(hooks[0])) {
                hooks[nh++] = w->valuestring;
            }
        }
        if (json_get_string(k, "name") == NULL || !cJSON_IsNumber(wait)) {
            continue;
        }
        push_contact(L, c, json_get_string(k, "name"), json_get_string(k, "email"), hooks, nh,
                     wait->valuedouble, json_get_string(k, "lang"));
        lua_rawseti(L, -2, ++i);
    }
    free(text);
    cJSON_Delete(arr);
    return 1;
}

/* notify.chain() -> { rounds = n, { name =, email =, webhooks = {...}, kinds = {...},
 * wait = s, lang = }, ... }: the tenant's contact chain, for escalate{}: the one saved in
 * the portal, else the configuration's. */
static int
l_notify_chain(lua_State *L)
{
    struct run *r;
    const struct notify_conf *c = run_conf(L, "notify.chain", &r, NULL);

    lua_newtable(L);
    lua_pushinteger(L, c != NULL ? c->rounds : 1);
    lua_setfield(L, -2, "rounds");
    if (push_saved_chain(L, run_tenant(r), c) || c == NULL) {
        return 1;
    }
    for (size_t i = 0; i < c->nchain; i++) {
        const struct notify_contact *k = &c->chain[i];

        push_contact(L, c, k->name, k->email, (const char *const *)k->webhooks, k->nwebhooks,
                     k->wait, k->lang);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* The configuration's chain of tenant t as the portal's starting point: the JSON form
 * push_saved_chain reads. */
static char *
notify_chain_seed(struct tenant *t)
{
    const struct notify_conf *c = tenant_conf(t, &notify_section);
    cJSON *arr = cJSON_CreateArray();
    char *out;

    for (size_t i = 0; c != NULL && i < c->nchain; i++) {
        const struct notify_contact *k = &c->chain[i];
        cJSON *o = cJSON_CreateObject(), *w = cJSON_AddArrayToObject(o, "webhooks");

        cJSON_AddStringToObject(o, "name", k->name);
        if (k->email != NULL) {
            cJSON_AddStringToObject(o, "email", k->email);
        }
        for (size_t h = 0; h < k->nwebhooks; h++) {
            cJSON_AddItemToArray(w, cJSON_CreateString(k->webhooks[h]));
        }
        cJSON_AddNumberToObject(o, "wait", k->wait);
        cJSON_AddStringToObject(o, "lang",
                                k->lang != NULL   ? k->lang
                                : c->lang != NULL ? c->lang
                                                  : "ja");
        cJSON_AddItemToArray(arr, o);
    }
    out = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return out;
}

static void
notify_metrics(struct buf *b, void *arg)
{
    (void)arg;
    metrics_counter(b, "kagari_notify_mail_sent_total", "Mail messages the server accepted",
                    stats.mail_sent);
    metrics_counter(b, "kagari_notify_mail_failed_total",
                    "Mail messages given up (permanent refusal or attempts exhausted)",
                    stats.mail_failed);
    metrics_counter(b, "kagari_notify_mail_retried_total", "Mail attempts retried",
                    stats.mail_retried);
    metrics_counter(b, "kagari_notify_webhooks_sent_total",
                    "Teams, Slack and webhook notifications delivered", stats.hooks_sent);
}

/* The HTTP client and call settings are the call core's (call_init, run once for all
 * the connectors that share it); notify adds only its counters. */
static int
notify_init(const struct config *cfg, char **errp)
{
    (void)cfg;
    (void)errp;
    metrics_add(notify_metrics, NULL);
    tenant_setting_seed("notify.chain", notify_chain_seed);
    return 0;
}

static void
notify_shutdown(void)
{
    metrics_remove(notify_metrics, NULL);
}

static int
luaopen_kagari_notify(lua_State *L)
{
    static const luaL_Reg notify_funcs[] = {
        { "email", l_notify_email },
        { "webhook", l_notify_webhook },
        { "teams", l_notify_teams },
        { "slack", l_notify_slack },
        { "template", l_notify_template },
        { "chain", l_notify_chain },
        { NULL, NULL },
    };

    luaL_newlib(L, notify_funcs);
    return 1;
}

const struct connector notify_connector = {
    "notify",
    "mail (SMTP), Teams, Slack and signed webhooks; the tenant's contact chain",
    luaopen_kagari_notify,
    &notify_section,
    notify_tenant_open,
    notify_tenant_close,
    notify_init,
    notify_shutdown,
};
