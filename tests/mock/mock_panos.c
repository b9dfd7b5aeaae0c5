/* mock_panos.c: the PAN-OS XML API on /api/ (reference section 7): keygen, User-ID
 * register/unregister of IP->tag mappings with tag timeouts, and the op command
 * "show object registered-ip". Request XML is parsed with libexpat; every value in an
 * answer is XML-escaped. Documented in tests/mock/README.md. */
#include "tests/mock/mock.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <expat.h>
#include <openssl/evp.h>

#include "engine/json.h"

#define XML_MAX_DEPTH 32
#define XML_MAX_NODES 200000
#define XML_MAX_TEXT (64 * 1024)
#define UID_MAX_TAGS 32         /* per IP */
#define UID_MAX_TAG_LEN 127     /* characters */
#define UID_MAX_TIMEOUT 2592000 /* seconds (30 days) */
#define SHOW_MAX_LIMIT 500

/* ---- state: admins (from the seed, fixed), registrations and counters (reset) ---- */

struct panos_admin {
    char *user;
    char *password;
    char *key;
};

struct uid_tag {
    char *name;
    int timeout;        /* seconds, 0: never expires */
    int64_t expires_ms; /* 0: never */
    int64_t at_ms;      /* registered */
};

struct uid_ip {
    char *ip;
    int persistent;
    struct mvec tags; /* struct uid_tag, registration order */
};

static struct mvec admins;  /* struct panos_admin */
static struct mvec uid_ips; /* struct uid_ip, registration order */
static struct mmap uid_map; /* ip -> struct uid_ip */

static struct {
    unsigned long keygen, keygen_denied, denied, user_id, op, other, bad_request, malformed;
    unsigned long registered, register_exists, unregistered, unregister_missing;
    unsigned long entries_rejected, expired;
} cnt;

/* The API key of an admin: base64("-AQ==" + base64(SHA-1(user)) + base64(the first 16
 * bytes of SHA-256("user:password"))), shaped like a real device's key and fixed, so
 * that tests know it in advance. */
static char *
derive_key(const char *user, const char *password)
{
    unsigned char md[EVP_MAX_MD_SIZE], raw[128], out[256];
    unsigned int mdlen;
    char *up = xasprintf("%s:%s", user, password);
    int n = 5;

    memcpy(raw, "-AQ==", 5);
    EVP_Digest(user, strlen(user), md, &mdlen, EVP_sha1(), NULL);
    n += EVP_EncodeBlock(raw + n, md, 20);
    EVP_Digest(up, strlen(up), md, &mdlen, EVP_sha256(), NULL);
    n += EVP_EncodeBlock(raw + n, md, 16);
    EVP_EncodeBlock(out, raw, n);
    free(up);
    return xstrdup((const char *)out);
}

int
panos_init(char **errp)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, json_get(mock.seed, "panosAdmins"))
    {
        const char *user = jstr(it, "user"), *password = jstr(it, "password");
        const char *key = jstr(it, "key");
        struct panos_admin *a;

        if (user == NULL || password == NULL || user[0] == '\0') {
            return kg_err(errp, "seed: panosAdmins: an item without a string user and password");
        }
        if (json_get(it, "key") != NULL && (key == NULL || key[0] == '\0')) {
            return kg_err(errp, "seed: panosAdmins: %s: key must be a non-empty string", user);
        }
        a = xcalloc(1, sizeof(*a));
        a->user = xstrdup(user);
        a->password = xstrdup(password);
        a->key = key != NULL ? xstrdup(key) : derive_key(user, password);
        mvec_push(&admins, a);
    }
    return 0;
}

static void
uid_ip_free(struct uid_ip *u)
{
    for (size_t i = 0; i < u->tags.n; i++) {
        struct uid_tag *t = u->tags.v[i];

        free(t->name);
        free(t);
    }
    mvec_free(&u->tags);
    free(u->ip);
    free(u);
}

static void
uid_clear(void)
{
    for (size_t i = 0; i < uid_ips.n; i++) {
        uid_ip_free(uid_ips.v[i]);
    }
    mvec_free(&uid_ips);
    mmap_clear(&uid_map);
}

void
panos_clear_registrations(void)
{
    uid_clear();
}

static void cfg_clear(void);

void
panos_reset(void)
{
    uid_clear();
    cfg_clear();
    memset(&cnt, 0, sizeof(cnt));
}

void
panos_free(void)
{
    uid_clear();
    cfg_clear();
    for (size_t i = 0; i < admins.n; i++) {
        struct panos_admin *a = admins.v[i];

        free(a->user);
        free(a->password);
        free(a->key);
        free(a);
    }
    mvec_free(&admins);
}

/* Drop every tag whose timeout has passed, and IPs left without tags. */
static void
uid_expire(int64_t now)
{
    size_t i = 0;

    while (i < uid_ips.n) {
        struct uid_ip *u = uid_ips.v[i];
        size_t k = 0;

        while (k < u->tags.n) {
            struct uid_tag *t = u->tags.v[k];

            if (t->expires_ms != 0 && now >= t->expires_ms) {
                mvec_remove(&u->tags, t);
                free(t->name);
                free(t);
                cnt.expired++;
            } else {
                k++;
            }
        }
        if (u->tags.n == 0) {
            mvec_remove(&uid_ips, u);
            mmap_del(&uid_map, u->ip);
            uid_ip_free(u);
        } else {
            i++;
        }
    }
}

static size_t
uid_active(void)
{
    size_t n = 0;

    for (size_t i = 0; i < uid_ips.n; i++) {
        n += ((struct uid_ip *)uid_ips.v[i])->tags.n;
    }
    return n;
}

static struct uid_tag *
uid_find_tag(const struct uid_ip *u, const char *name)
{
    for (size_t i = 0; u != NULL && i < u->tags.n; i++) {
        struct uid_tag *t = u->tags.v[i];

        if (strcmp(t->name, name) == 0) {
            return t;
        }
    }
    return NULL;
}

cJSON *
panos_counters_json(void)
{
    cJSON *o = cJSON_CreateObject();

    uid_expire(mock_now());
    cJSON_AddNumberToObject(o, "keygen", (double)cnt.keygen);
    cJSON_AddNumberToObject(o, "keygen_denied", (double)cnt.keygen_denied);
    cJSON_AddNumberToObject(o, "denied", (double)cnt.denied);
    cJSON_AddNumberToObject(o, "user-id", (double)cnt.user_id);
    cJSON_AddNumberToObject(o, "op", (double)cnt.op);
    cJSON_AddNumberToObject(o, "other", (double)cnt.other);
    cJSON_AddNumberToObject(o, "bad_request", (double)cnt.bad_request);
    cJSON_AddNumberToObject(o, "malformed", (double)cnt.malformed);
    cJSON_AddNumberToObject(o, "registered", (double)cnt.registered);
    cJSON_AddNumberToObject(o, "register_exists", (double)cnt.register_exists);
    cJSON_AddNumberToObject(o, "unregistered", (double)cnt.unregistered);
    cJSON_AddNumberToObject(o, "unregister_missing", (double)cnt.unregister_missing);
    cJSON_AddNumberToObject(o, "entries_rejected", (double)cnt.entries_rejected);
    cJSON_AddNumberToObject(o, "expired", (double)cnt.expired);
    cJSON_AddNumberToObject(o, "active", (double)uid_active());
    return o;
}

/* The current mappings, for GET /_mock/state/registeredIps (expired tags dropped first). */
cJSON *
panos_state_json(void)
{
    cJSON *arr = cJSON_CreateArray();

    uid_expire(mock_now());
    for (size_t i = 0; i < uid_ips.n; i++) {
        const struct uid_ip *u = uid_ips.v[i];
        cJSON *o = cJSON_CreateObject(), *tags;

        cJSON_AddStringToObject(o, "ip", u->ip);
        cJSON_AddBoolToObject(o, "persistent", u->persistent);
        tags = cJSON_AddArrayToObject(o, "tags");
        for (size_t k = 0; k < u->tags.n; k++) {
            const struct uid_tag *t = u->tags.v[k];
            cJSON *to = cJSON_CreateObject();
            char at[32];

            cJSON_AddStringToObject(to, "name", t->name);
            cJSON_AddNumberToObject(to, "timeout", t->timeout);
            util_fmt_time(t->at_ms, at);
            cJSON_AddStringToObject(to, "registered", at);
            if (t->expires_ms != 0) {
                util_fmt_time(t->expires_ms, at);
                cJSON_AddStringToObject(to, "expires", at);
            } else {
                cJSON_AddNullToObject(to, "expires");
            }
            cJSON_AddItemToArray(tags, to);
        }
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

/* ---- XML out ---- */

static void
out_s(struct buf *b, const char *s)
{
    (void)!buf_puts(b, s);
}

static void out_f(struct buf *b, const char *fmt, ...) KG_PRINTF(2, 3);

static void
out_f(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = xvasprintf(fmt, ap);
    va_end(ap);
    out_s(b, s);
    free(s);
}

/* Append s escaped for both text and attribute values (either quote). Control
 * characters XML 1.0 cannot carry become '?'; tab, LF and CR become character references
 * so that attribute values keep them. */
static void
out_esc(struct buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        switch (*p) {
        case '&':
            out_s(b, "&amp;");
            break;
        case '<':
            out_s(b, "&lt;");
            break;
        case '>':
            out_s(b, "&gt;");
            break;
        case '"':
            out_s(b, "&quot;");
            break;
        case '\'':
            out_s(b, "&apos;");
            break;
        case '\t':
        case '\n':
        case '\r':
            out_f(b, "&#%d;", *p);
            break;
        default:
            (void)!buf_append(b, *p < 0x20 ? "?" : (const char *)p, 1);
            break;
        }
    }
}

/* Answer with the document in b (taken). */
static void
reply(struct mreq *r, int status, struct buf *b)
{
    size_t len = b->len;

    mreq_set(r, status, PANOS_CTYPE, buf_take(b), len);
}

/* <response status="error" code="N"><result><msg>MSG</msg></result></response>: the
 * envelope of keygen/auth failures and bad requests. */
void
panos_error(struct mreq *r, int status, int code, const char *msg)
{
    struct buf b;

    buf_init(&b, 0);
    out_f(&b, "<response status=\"error\" code=\"%d\"><result><msg>", code);
    out_esc(&b, msg);
    out_s(&b, "</msg></result></response>");
    reply(r, status, &b);
}

/* HTTP 200, status="error" with a code and <msg><line>MSG</line></msg> (command errors,
 * as devices answer them). */
static void reply_line(struct mreq *r, int code, const char *fmt, ...) KG_PRINTF(3, 4);

static void
reply_line(struct mreq *r, int code, const char *fmt, ...)
{
    struct buf b;
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    msg = xvasprintf(fmt, ap);
    va_end(ap);
    buf_init(&b, 0);
    out_f(&b, "<response status=\"error\" code=\"%d\"><msg><line>", code);
    out_esc(&b, msg);
    out_s(&b, "</line></msg></response>");
    free(msg);
    reply(r, 200, &b);
}

/* ---- XML in: a small element tree built with expat ---- */

struct xnode {
    char *name;
    char **attrs; /* name, value, ..., NULL */
    struct buf text;
    struct xnode *parent, *child, *last, *next;
};

struct xparse {
    XML_Parser p;
    struct xnode *root, *cur;
    int depth;
    size_t nodes;
    const char *why; /* our own refusal, NULL: expat's error */
};

static void
xnode_free(struct xnode *n)
{
    while (n != NULL) {
        struct xnode *next = n->next;

        xnode_free(n->child);
        free(n->name);
        for (size_t i = 0; n->attrs != NULL && n->attrs[i] != NULL; i++) {
            free(n->attrs[i]);
        }
        free(n->attrs);
        buf_free(&n->text);
        free(n);
        n = next;
    }
}

static void
xstop(struct xparse *x, const char *why)
{
    if (x->why == NULL) {
        x->why = why;
    }
    XML_StopParser(x->p, XML_FALSE);
}

static void XMLCALL
x_start(void *arg, const XML_Char *name, const XML_Char **atts)
{
    struct xparse *x = arg;
    struct xnode *n;
    size_t na = 0;

    if (x->depth >= XML_MAX_DEPTH || x->nodes >= XML_MAX_NODES) {
        xstop(x, x->depth >= XML_MAX_DEPTH ? "elements nested too deeply" : "too many elements");
        return;
    }
    while (atts[na] != NULL) {
        na++;
    }
    n = xcalloc(1, sizeof(*n));
    n->name = xstrdup(name);
    n->attrs = xcalloc(na + 1, sizeof(char *));
    for (size_t i = 0; i < na; i++) {
        n->attrs[i] = xstrdup(atts[i]);
    }
    buf_init(&n->text, XML_MAX_TEXT);
    n->parent = x->cur;
    if (x->cur == NULL) {
        x->root = n;
    } else if (x->cur->last == NULL) {
        x->cur->child = x->cur->last = n;
    } else {
        x->cur->last->next = n;
        x->cur->last = n;
    }
    x->cur = n;
    x->depth++;
    x->nodes++;
}

static void XMLCALL
x_end(void *arg, const XML_Char *name)
{
    struct xparse *x = arg;

    (void)name;
    if (x->cur != NULL) {
        x->cur = x->cur->parent;
        x->depth--;
    }
}

static void XMLCALL
x_text(void *arg, const XML_Char *s, int len)
{
    struct xparse *x = arg;

    if (x->cur != NULL && len > 0 && buf_append(&x->cur->text, s, (size_t)len) == -1) {
        xstop(x, "text too long");
    }
}

/* No DTDs: a command never needs one, and entity declarations are how XML bombs start. */
static void XMLCALL
x_doctype(void *arg, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
          int has_internal_subset)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal_subset;
    xstop(arg, "DOCTYPE is not allowed");
}

/* Parse s as one XML document into *out (caller frees with xnode_free). -1 with a
 * message on anything that is not well-formed or is over the limits. */
static int
xml_parse(const char *s, size_t n, struct xnode **out, char **errp)
{
    struct xparse x;
    int rc = 0;

    memset(&x, 0, sizeof(x));
    *out = NULL;
    if (n > INT_MAX) {
        return kg_err(errp, "document too large");
    }
    x.p = XML_ParserCreate(NULL);
    if (x.p == NULL) {
        abort();
    }
    XML_SetUserData(x.p, &x);
    XML_SetElementHandler(x.p, x_start, x_end);
    XML_SetCharacterDataHandler(x.p, x_text);
    XML_SetStartDoctypeDeclHandler(x.p, x_doctype);
    if (XML_Parse(x.p, s, (int)n, XML_TRUE) != XML_STATUS_OK || x.why != NULL) {
        if (x.why != NULL) {
            kg_err(errp, "%s", x.why);
        } else {
            kg_err(errp, "%s at line %lu, column %lu", XML_ErrorString(XML_GetErrorCode(x.p)),
                   (unsigned long)XML_GetCurrentLineNumber(x.p),
                   (unsigned long)XML_GetCurrentColumnNumber(x.p));
        }
        xnode_free(x.root);
        rc = -1;
    } else {
        *out = x.root;
    }
    XML_ParserFree(x.p);
    return rc;
}

static const char *
xattr(const struct xnode *n, const char *name)
{
    for (size_t i = 0; n->attrs[i] != NULL; i += 2) {
        if (strcmp(n->attrs[i], name) == 0) {
            return n->attrs[i + 1];
        }
    }
    return NULL;
}

static struct xnode *
xchild(const struct xnode *n, const char *name)
{
    for (struct xnode *c = n->child; c != NULL; c = c->next) {
        if (strcmp(c->name, name) == 0) {
            return c;
        }
    }
    return NULL;
}

/* The element's own text without surrounding white space (a new string). */
static char *
xtext(const struct xnode *n)
{
    const char *s = n->text.len > 0 ? n->text.data : "";
    size_t len = strlen(s);

    while (len > 0 && strchr(" \t\r\n", s[len - 1]) != NULL) {
        len--;
    }
    while (len > 0 && strchr(" \t\r\n", *s) != NULL) {
        s++;
        len--;
    }
    return xstrndup(s, len);
}

/* ---- the request ---- */

struct papi {
    struct mreq *r;
    char **names, **values; /* the form body's parameters */
    size_t n;
};

/* A parameter from the form body, else from the query string. */
static const char *
param(const struct papi *a, const char *name)
{
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->names[i], name) == 0) {
            return a->values[i];
        }
    }
    return mhttp_param(a->r->h, name);
}

static void
deny(struct mreq *r)
{
    panos_error(r, 403, 403, "Invalid Credential");
}

static struct panos_admin *
admin_by_password(const char *user, const char *password)
{
    for (size_t i = 0; user != NULL && password != NULL && i < admins.n; i++) {
        struct panos_admin *a = admins.v[i];

        if (strcmp(a->user, user) == 0 && strcmp(a->password, password) == 0) {
            return a;
        }
    }
    return NULL;
}

/* type=keygen&user=&password= -> the admin's key, with the real devices' spacing and
 * quotes in the status attribute; wrong credentials -> HTTP 403. */
static void
keygen(struct papi *a)
{
    struct panos_admin *ad = admin_by_password(param(a, "user"), param(a, "password"));
    struct buf b;

    if (ad == NULL) {
        cnt.keygen_denied++;
        deny(a->r);
        return;
    }
    cnt.keygen++;
    buf_init(&b, 0);
    out_s(&b, "<response status = 'success'><result><key>");
    out_esc(&b, ad->key);
    out_s(&b, "</key></result></response>");
    reply(a->r, 200, &b);
}

/* The admin (its user name) whose key is in X-PAN-KEY or key=, else whose HTTP Basic
 * credentials were given; NULL when none. */
static const char *
authorized(const struct papi *a)
{
    const char *key = mhttp_header(a->r->h, "X-PAN-KEY");
    const char *auth = mhttp_header(a->r->h, "Authorization");

    if (key == NULL) {
        key = param(a, "key");
    }
    if (key != NULL) {
        for (size_t i = 0; i < admins.n; i++) {
            if (strcmp(((struct panos_admin *)admins.v[i])->key, key) == 0) {
                return ((struct panos_admin *)admins.v[i])->user;
            }
        }
        return NULL;
    }
    if (auth != NULL && strncasecmp(auth, "Basic ", 6) == 0) {
        size_t len;
        unsigned char *dec = mock_b64_decode(auth + 6, strlen(auth + 6), &len);
        char *colon = dec != NULL ? strchr((char *)dec, ':') : NULL;
        const struct panos_admin *ad = NULL;

        if (colon != NULL && strlen((char *)dec) == len) {
            *colon = '\0';
            ad = admin_by_password((char *)dec, colon + 1);
        }
        free(dec);
        return ad != NULL ? ad->user : NULL;
    }
    return NULL;
}

/* ---- type=user-id ---- */

/* Address family of s[0..n) as a plain address: 4, 6 or 0. */
static int
ip_family(const char *s, size_t n)
{
    char tmp[64];
    unsigned char bin[16];

    if (n == 0 || n >= sizeof(tmp)) {
        return 0;
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (inet_pton(AF_INET, tmp, bin) == 1) {
        return 4;
    }
    if (inet_pton(AF_INET6, tmp, bin) == 1) {
        return 6;
    }
    return 0;
}

/* An address, a CIDR subnet or a start-end range (PAN-OS 10.0+ takes all three). */
static int
ip_valid(const char *s)
{
    const char *slash = strchr(s, '/'), *dash = strchr(s, '-');

    if (slash != NULL) {
        int fam = ip_family(s, (size_t)(slash - s));
        char *end;
        long bits = strtol(slash + 1, &end, 10);

        return fam != 0 && slash[1] >= '0' && slash[1] <= '9' && *end == '\0' && bits >= 0 &&
               bits <= (fam == 4 ? 32 : 128);
    }
    if (dash != NULL) {
        int fam = ip_family(s, (size_t)(dash - s));

        return fam != 0 && ip_family(dash + 1, strlen(dash + 1)) == fam;
    }
    return ip_family(s, strlen(s)) != 0;
}

/* Seconds in [0, UID_MAX_TIMEOUT], digits only; -1 when not. */
static long
parse_timeout(const char *s)
{
    long v = 0;

    if (s == NULL) {
        return 0;
    }
    if (*s == '\0') {
        return -1;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > UID_MAX_TIMEOUT) {
            return -1;
        }
        v = v * 10 + (*s - '0');
    }
    return v <= UID_MAX_TIMEOUT ? v : -1;
}

/* One per-entry message of the uid-response. */
static void entry_msg(struct buf *b, const char *ip, const char *fmt, ...) KG_PRINTF(3, 4);

static void
entry_msg(struct buf *b, const char *ip, const char *fmt, ...)
{
    va_list ap;
    char *msg;

    va_start(ap, fmt);
    msg = xvasprintf(fmt, ap);
    va_end(ap);
    out_s(b, "<entry ip=\"");
    out_esc(b, ip);
    out_s(b, "\" message=\"");
    out_esc(b, msg);
    out_s(b, "\"/>");
    free(msg);
}

static void
unregister_entry(const struct xnode *e, struct buf *msgs)
{
    const char *ip = xattr(e, "ip");
    struct uid_ip *u = ip != NULL ? mmap_get(&uid_map, ip) : NULL;
    const struct xnode *tag = xchild(e, "tag");

    if (ip == NULL) {
        cnt.entries_rejected++;
        entry_msg(msgs, "", "entry without an ip attribute, ignore");
        return;
    }
    if (tag == NULL) { /* no tag list: every tag of the address */
        if (u == NULL) {
            cnt.unregister_missing++;
            entry_msg(msgs, ip, "ip %s does not exist, ignore unreg", ip);
            return;
        }
        cnt.unregistered += u->tags.n;
        mvec_remove(&uid_ips, u);
        mmap_del(&uid_map, u->ip);
        uid_ip_free(u);
        return;
    }
    for (const struct xnode *m = tag->child; m != NULL; m = m->next) {
        char *name;
        struct uid_tag *t;

        if (strcmp(m->name, "member") != 0) {
            continue;
        }
        name = xtext(m);
        t = uid_find_tag(u, name);
        if (t == NULL) {
            cnt.unregister_missing++;
            entry_msg(msgs, ip, "tag %s does not exist, ignore unreg", name);
        } else {
            cnt.unregistered++;
            mvec_remove(&u->tags, t);
            free(t->name);
            free(t);
        }
        free(name);
    }
    if (u != NULL && u->tags.n == 0) {
        mvec_remove(&uid_ips, u);
        mmap_del(&uid_map, u->ip);
        uid_ip_free(u);
    }
}

static void
register_entry(const struct xnode *e, struct buf *msgs, int64_t now)
{
    const char *ip = xattr(e, "ip"), *pers = xattr(e, "persistent");
    const struct xnode *tag = xchild(e, "tag");
    struct uid_ip *u;

    if (ip == NULL || !ip_valid(ip)) {
        cnt.entries_rejected++;
        entry_msg(msgs, ip != NULL ? ip : "",
                  "ip %s is not a valid address, range or subnet, ignore",
                  ip != NULL ? ip : "(none)");
        return;
    }
    if (pers != NULL && strcmp(pers, "0") != 0 && strcmp(pers, "1") != 0) {
        cnt.entries_rejected++;
        entry_msg(msgs, ip, "persistent %s is not valid (0 or 1), ignore", pers);
        return;
    }
    if (tag == NULL || xchild(tag, "member") == NULL) {
        cnt.entries_rejected++;
        entry_msg(msgs, ip, "entry without tag members, ignore");
        return;
    }
    u = mmap_get(&uid_map, ip);
    for (const struct xnode *m = tag->child; m != NULL; m = m->next) {
        const char *tos = xattr(m, "timeout");
        long timeout = parse_timeout(tos);
        char *name;
        struct uid_tag *t;

        if (strcmp(m->name, "member") != 0) {
            continue;
        }
        name = xtext(m);
        if (name[0] == '\0' || strlen(name) > UID_MAX_TAG_LEN) {
            cnt.entries_rejected++;
            entry_msg(msgs, ip, "tag %s is not valid (1 to %d characters), ignore", name,
                      UID_MAX_TAG_LEN);
        } else if (timeout < 0) {
            cnt.entries_rejected++;
            entry_msg(msgs, ip, "timeout %s of tag %s is not valid (0 to %d), ignore", tos, name,
                      UID_MAX_TIMEOUT);
        } else if (uid_find_tag(u, name) != NULL) {
            cnt.register_exists++;
            entry_msg(msgs, ip, "tag %s already exists, ignore", name);
        } else if (u != NULL && u->tags.n >= UID_MAX_TAGS) {
            cnt.entries_rejected++;
            entry_msg(msgs, ip, "ip %s already has %d tags, tag %s ignored", ip, UID_MAX_TAGS,
                      name);
        } else {
            if (u == NULL) {
                u = xcalloc(1, sizeof(*u));
                u->ip = xstrdup(ip);
                mvec_push(&uid_ips, u);
                mmap_put(&uid_map, u->ip, u);
            }
            t = xcalloc(1, sizeof(*t));
            t->name = name;
            name = NULL;
            t->timeout = (int)timeout;
            t->expires_ms = timeout > 0 ? now + timeout * 1000 : 0;
            t->at_ms = now;
            mvec_push(&u->tags, t);
            u->persistent = pers == NULL || strcmp(pers, "1") == 0;
            cnt.registered++;
        }
        free(name);
    }
}

/* The cmd parameter as an XML document, or NULL after answering what is wrong with it
 * (missing: HTTP 400; not well-formed: code 18). */
static struct xnode *
parse_cmd(struct papi *a, const char *cmd)
{
    struct xnode *doc = NULL;
    char *err = NULL;

    if (cmd == NULL) {
        cnt.bad_request++;
        panos_error(a->r, 400, 400, "Missing parameter: cmd");
        return NULL;
    }
    if (xml_parse(cmd, strlen(cmd), &doc, &err) == -1) {
        cnt.malformed++;
        reply_line(a->r, 18, "Malformed Request: %s", err);
        free(err);
        return NULL;
    }
    return doc;
}

/* type=user-id&cmd=<uid-message>: the structure is checked first (nothing applies when
 * it is wrong), then every unregister block, then every register block. Per-entry
 * refusals ("already exists, ignore", ...) make the answer status="error" with a
 * uid-response listing them; the other entries still apply. */

static void
user_id(struct papi *a)
{
    const char *cmd = param(a, "cmd");
    struct xnode *doc = NULL, *payload, *n;
    struct buf reg, unreg, b;
    char *s;
    int64_t now = mock_now();

    cnt.user_id++;
    if ((doc = parse_cmd(a, cmd)) == NULL) {
        return;
    }
    if (strcmp(doc->name, "uid-message") != 0) {
        reply_line(a->r, 17, "%s is unexpected (expected uid-message)", doc->name);
        goto out;
    }
    if ((n = xchild(doc, "version")) != NULL) {
        s = xtext(n);
        if (strcmp(s, "1.0") != 0 && strcmp(s, "2.0") != 0) {
            reply_line(a->r, 17, "uid-message -> version %s is not supported", s);
            free(s);
            goto out;
        }
        free(s);
    }
    if ((n = xchild(doc, "type")) != NULL) {
        s = xtext(n);
        if (strcmp(s, "update") != 0) {
            reply_line(a->r, 17, "uid-message -> type %s is unexpected", s);
            free(s);
            goto out;
        }
        free(s);
    }
    payload = xchild(doc, "payload");
    if (payload == NULL) {
        reply_line(a->r, 17, "uid-message -> payload is missing");
        goto out;
    }
    for (n = payload->child; n != NULL; n = n->next) {
        if (strcmp(n->name, "register") != 0 && strcmp(n->name, "unregister") != 0) {
            reply_line(a->r, 17, "uid-message -> payload -> %s is not simulated by kagari-mock",
                       n->name);
            goto out;
        }
    }
    buf_init(&reg, 0);
    buf_init(&unreg, 0);
    for (n = payload->child; n != NULL; n = n->next) {
        if (strcmp(n->name, "unregister") == 0) {
            for (const struct xnode *e = n->child; e != NULL; e = e->next) {
                if (strcmp(e->name, "entry") == 0) {
                    unregister_entry(e, &unreg);
                }
            }
        }
    }
    for (n = payload->child; n != NULL; n = n->next) {
        if (strcmp(n->name, "register") == 0) {
            for (const struct xnode *e = n->child; e != NULL; e = e->next) {
                if (strcmp(e->name, "entry") == 0) {
                    register_entry(e, &reg, now);
                }
            }
        }
    }
    buf_init(&b, 0);
    if (reg.len == 0 && unreg.len == 0) {
        out_s(&b, "<response status=\"success\"><result><uid-response><version>2.0</version>"
                  "<payload/></uid-response></result></response>");
    } else {
        out_s(&b, "<response status=\"error\"><msg><line><uid-response><version>2.0</version>"
                  "<payload>");
        if (unreg.len > 0) {
            out_s(&b, "<unregister>");
            out_s(&b, unreg.data);
            out_s(&b, "</unregister>");
        }
        if (reg.len > 0) {
            out_s(&b, "<register>");
            out_s(&b, reg.data);
            out_s(&b, "</register>");
        }
        out_s(&b, "</payload></uid-response></line></msg></response>");
    }
    buf_free(&reg);
    buf_free(&unreg);
    reply(a->r, 200, &b);
out:
    xnode_free(doc);
}

/* ---- type=op: show object registered-ip ---- */

static int
uid_has_tag_in(const struct uid_ip *u, const struct xnode *tagf)
{
    for (const struct xnode *e = tagf->child; e != NULL; e = e->next) {
        const char *name = xattr(e, "name");

        if (strcmp(e->name, "entry") == 0 && name != NULL && uid_find_tag(u, name) != NULL) {
            return 1;
        }
    }
    return 0;
}

/* <show><object><registered-ip>[<all/>][<tag><entry name="t"/></tag>][<ip>a</ip>]
 * [<limit>n</limit>][<start-point>i</start-point>]</registered-ip></object></show> */
static void
show_registered_ip(struct papi *a, const struct xnode *rip)
{
    const struct xnode *tagf = NULL, *ipf = NULL;
    char *ip = NULL;
    long limit = 0, start = 1;
    size_t idx = 0, shown = 0;
    struct buf b;

    for (const struct xnode *c = rip->child; c != NULL; c = c->next) {
        if (strcmp(c->name, "tag") == 0) {
            tagf = c;
        } else if (strcmp(c->name, "ip") == 0) {
            ipf = c;
        } else if (strcmp(c->name, "limit") == 0 || strcmp(c->name, "start-point") == 0) {
            char *s = xtext(c), *end;
            long v = strtol(s, &end, 10);
            int is_limit = c->name[0] == 'l';

            if (s[0] < '0' || s[0] > '9' || *end != '\0' || v < 1 ||
                (is_limit && v > SHOW_MAX_LIMIT)) {
                reply_line(a->r, 17, "show -> object -> registered-ip -> %s %s is invalid", c->name,
                           s);
                free(s);
                return;
            }
            free(s);
            *(is_limit ? &limit : &start) = v;
        } else if (strcmp(c->name, "all") != 0) {
            reply_line(a->r, 17, "show -> object -> registered-ip -> %s is unexpected", c->name);
            return;
        }
    }
    if (ipf != NULL) {
        ip = xtext(ipf);
    }
    buf_init(&b, 0);
    out_s(&b, "<response status=\"success\"><result>");
    for (size_t i = 0; i < uid_ips.n; i++) {
        const struct uid_ip *u = uid_ips.v[i];

        if ((ip != NULL && strcasecmp(ip, u->ip) != 0) ||
            (tagf != NULL && !uid_has_tag_in(u, tagf))) {
            continue;
        }
        idx++;
        if ((long)idx < start || (limit > 0 && (long)shown >= limit)) {
            continue;
        }
        shown++;
        out_s(&b, "<entry ip=\"");
        out_esc(&b, u->ip);
        out_f(&b, "\" from_agent=\"0\" persistent=\"%d\"><tag>", u->persistent);
        for (size_t k = 0; k < u->tags.n; k++) {
            out_s(&b, "<member>");
            out_esc(&b, ((const struct uid_tag *)u->tags.v[k])->name);
            out_s(&b, "</member>");
        }
        out_s(&b, "</tag></entry>");
    }
    out_f(&b, "<count>%zu</count></result></response>", shown);
    free(ip);
    reply(a->r, 200, &b);
}

static void show_jobs(struct papi *a, const struct xnode *jn);

static void
op(struct papi *a)
{
    const char *cmd = param(a, "cmd");
    struct xnode *doc = NULL, *obj, *rip;

    cnt.op++;
    if ((doc = parse_cmd(a, cmd)) == NULL) {
        return;
    }
    if (strcmp(doc->name, "show") == 0 && xchild(doc, "jobs") != NULL) {
        show_jobs(a, xchild(doc, "jobs"));
    } else if (strcmp(doc->name, "show") != 0 || doc->child == NULL) {
        reply_line(a->r, 17, "%s is unexpected (kagari-mock simulates show object registered-ip)",
                   doc->name);
    } else if ((obj = xchild(doc, "object")) == NULL || obj->child == NULL) {
        reply_line(a->r, 17, "show -> %s is unexpected", doc->child->name);
    } else if ((rip = xchild(obj, "registered-ip")) == NULL) {
        reply_line(a->r, 17, "show -> object -> %s is unexpected", obj->child->name);
    } else {
        show_registered_ip(a, rip);
    }
    xnode_free(doc);
}

/* ---- type=config: address objects and groups of one vsys; type=commit; jobs ---- */

struct cfg_addr {
    char *name;
    char *netmask;     /* ip-netmask */
    char *description; /* or NULL */
    struct mvec tags;  /* char * */
};

struct cfg_group {
    char *name;
    struct mvec members; /* char * (address names) */
};

struct commit_job {
    int id;
    char admin[64];
    int polls, needed;
    int finished;
    int ok;
    char *details; /* "\n"-separated lines, or NULL */
};

static struct mvec cfg_addrs, cfg_groups; /* candidate configuration */
static int cfg_dirty;                     /* changed since the last commit */
static struct mvec jobs;                  /* struct commit_job */
static int next_job = 4711;
static struct {
    char *lock;       /* the admin holding the configuration lock, or NULL */
    char *fail;       /* the next commit's job fails with these lines ("\n"), or NULL */
    int commit_polls; /* polls a commit job takes; 0: --poll-steps */
} ctl;
static struct {
    unsigned long set, edit, del, get, commit, no_changes, in_progress, locked, jobs_ok,
        jobs_failed, job_polls, config_rejected;
} ccnt;

static void
strs_free(struct mvec *v)
{
    for (size_t i = 0; i < v->n; i++) {
        free(v->v[i]);
    }
    mvec_free(v);
}

static void
addr_free(struct cfg_addr *a)
{
    free(a->name);
    free(a->netmask);
    free(a->description);
    strs_free(&a->tags);
    free(a);
}

static void
cfg_clear(void)
{
    for (size_t i = 0; i < cfg_addrs.n; i++) {
        addr_free(cfg_addrs.v[i]);
    }
    mvec_free(&cfg_addrs);
    for (size_t i = 0; i < cfg_groups.n; i++) {
        struct cfg_group *g = cfg_groups.v[i];

        free(g->name);
        strs_free(&g->members);
        free(g);
    }
    mvec_free(&cfg_groups);
    for (size_t i = 0; i < jobs.n; i++) {
        struct commit_job *j = jobs.v[i];

        free(j->details);
        free(j);
    }
    mvec_free(&jobs);
    free(ctl.lock);
    free(ctl.fail);
    memset(&ctl, 0, sizeof(ctl));
    memset(&ccnt, 0, sizeof(ccnt));
    cfg_dirty = 0;
    next_job = 4711;
}

static struct cfg_addr *
addr_find(const char *name)
{
    for (size_t i = 0; i < cfg_addrs.n; i++) {
        struct cfg_addr *a = cfg_addrs.v[i];

        if (strcmp(a->name, name) == 0) {
            return a;
        }
    }
    return NULL;
}

static struct cfg_group *
group_find(const char *name)
{
    for (size_t i = 0; i < cfg_groups.n; i++) {
        struct cfg_group *g = cfg_groups.v[i];

        if (strcmp(g->name, name) == 0) {
            return g;
        }
    }
    return NULL;
}

static int
strs_has(const struct mvec *v, const char *s)
{
    for (size_t i = 0; i < v->n; i++) {
        if (strcmp(v->v[i], s) == 0) {
            return 1;
        }
    }
    return 0;
}

/* What an xpath names: an address entry, a group's static list, or one member of it. */
enum xp_kind { XP_ADDR, XP_GROUP_STATIC, XP_GROUP_MEMBER };

struct xp {
    enum xp_kind kind;
    char name[128];   /* address or group */
    char member[128]; /* XP_GROUP_MEMBER */
};

/* Read "[@name='X']" (or "[text()='X']" with tag "text()") at *s into out. */
static int
xp_pred(const char **s, const char *attr, char *out, size_t n)
{
    size_t al = strlen(attr), len;
    const char *p = *s, *end;

    if (strncmp(p, "[", 1) != 0 || strncmp(p + 1, attr, al) != 0 || strncmp(p + 1 + al, "='", 2)) {
        return -1;
    }
    p += 3 + al;
    end = strchr(p, '\'');
    if (end == NULL || end[1] != ']' || (len = (size_t)(end - p)) == 0 || len >= n) {
        return -1;
    }
    memcpy(out, p, len);
    out[len] = '\0';
    *s = end + 2;
    return 0;
}

/* The firewall's xpaths of address objects and static groups, in the vsys or shared. */
static int
xp_parse(const char *s, struct xp *x)
{
    char dev[128], vsys[128];

    memset(x, 0, sizeof(*x));
    if (strncmp(s, "/config/shared", 14) == 0) {
        s += 14;
    } else if (strncmp(s, "/config/devices/entry", 21) == 0) {
        s += 21;
        if (xp_pred(&s, "@name", dev, sizeof(dev)) == -1 || strncmp(s, "/vsys/entry", 11) != 0) {
            return -1;
        }
        s += 11;
        if (xp_pred(&s, "@name", vsys, sizeof(vsys)) == -1) {
            return -1;
        }
    } else {
        return -1;
    }
    if (strncmp(s, "/address/entry", 14) == 0) {
        s += 14;
        x->kind = XP_ADDR;
        return xp_pred(&s, "@name", x->name, sizeof(x->name)) == 0 && *s == '\0' ? 0 : -1;
    }
    if (strncmp(s, "/address-group/entry", 20) == 0) {
        s += 20;
        if (xp_pred(&s, "@name", x->name, sizeof(x->name)) == -1 || strncmp(s, "/static", 7)) {
            return -1;
        }
        s += 7;
        if (*s == '\0') {
            x->kind = XP_GROUP_STATIC;
            return 0;
        }
        x->kind = XP_GROUP_MEMBER;
        if (strncmp(s, "/member", 7) != 0) {
            return -1;
        }
        s += 7;
        return xp_pred(&s, "text()", x->member, sizeof(x->member)) == 0 && *s == '\0' ? 0 : -1;
    }
    return -1;
}

/* The element parameter (a list of sibling elements) wrapped in one root. */
static struct xnode *
parse_element(struct papi *a, const char *el)
{
    char *doc, *err = NULL;
    struct xnode *root = NULL;

    if (el == NULL) {
        reply_line(a->r, 17, "Missing parameter: element");
        return NULL;
    }
    doc = xasprintf("<element>%s</element>", el);
    if (xml_parse(doc, strlen(doc), &root, &err) == -1) {
        cnt.malformed++;
        reply_line(a->r, 18, "Malformed Request: element: %s", err);
        free(err);
        root = NULL;
    }
    free(doc);
    return root;
}

static void
reply_ok(struct mreq *r, int code, const char *msg)
{
    struct buf b;

    buf_init(&b, 0);
    out_f(&b, "<response status=\"success\" code=\"%d\"><msg>", code);
    out_esc(&b, msg);
    out_s(&b, "</msg></response>");
    reply(r, 200, &b);
}

static void
config_set(struct papi *a, const struct xp *x)
{
    struct xnode *el = parse_element(a, param(a, "element"));

    if (el == NULL) {
        return;
    }
    if (x->kind == XP_ADDR) {
        struct cfg_addr *ad = addr_find(x->name), tmp;
        int fresh = ad == NULL;

        memset(&tmp, 0, sizeof(tmp));
        for (struct xnode *c = el->child; c != NULL; c = c->next) {
            if (strcmp(c->name, "ip-netmask") == 0) {
                char *v = xtext(c);

                if (!ip_valid(v) || strchr(v, '-') != NULL) {
                    ccnt.config_rejected++;
                    reply_line(a->r, 12,
                               "address -> %s -> ip-netmask '%s' is not a valid IP "
                               "address or netmask",
                               x->name, v);
                    free(v);
                    free(tmp.netmask);
                    free(tmp.description);
                    strs_free(&tmp.tags);
                    xnode_free(el);
                    return;
                }
                free(tmp.netmask);
                tmp.netmask = v;
            } else if (strcmp(c->name, "description") == 0) {
                free(tmp.description);
                tmp.description = xtext(c);
            } else if (strcmp(c->name, "tag") == 0) {
                for (struct xnode *m = c->child; m != NULL; m = m->next) {
                    if (strcmp(m->name, "member") == 0) {
                        mvec_push(&tmp.tags, xtext(m));
                    }
                }
            } else {
                ccnt.config_rejected++;
                reply_line(a->r, 12, "address -> %s -> %s is unexpected here", x->name, c->name);
                free(tmp.netmask);
                free(tmp.description);
                strs_free(&tmp.tags);
                xnode_free(el);
                return;
            }
        }
        if (fresh && tmp.netmask == NULL) {
            ccnt.config_rejected++;
            reply_line(a->r, 12, "address -> %s is missing 'ip-netmask'", x->name);
            free(tmp.description);
            strs_free(&tmp.tags);
            xnode_free(el);
            return;
        }
        if (fresh) {
            ad = xcalloc(1, sizeof(*ad));
            ad->name = xstrdup(x->name);
            mvec_push(&cfg_addrs, ad);
        }
        if (tmp.netmask != NULL) {
            free(ad->netmask);
            ad->netmask = tmp.netmask;
        }
        if (tmp.description != NULL) {
            free(ad->description);
            ad->description = tmp.description;
        }
        for (size_t i = 0; i < tmp.tags.n; i++) {
            if (!strs_has(&ad->tags, tmp.tags.v[i])) {
                mvec_push(&ad->tags, xstrdup(tmp.tags.v[i]));
            }
        }
        strs_free(&tmp.tags);
    } else if (x->kind == XP_GROUP_STATIC) {
        struct cfg_group *g = group_find(x->name);

        for (struct xnode *c = el->child; c != NULL; c = c->next) {
            if (strcmp(c->name, "member") != 0) {
                ccnt.config_rejected++;
                reply_line(a->r, 12, "address-group -> %s -> static -> %s is unexpected here",
                           x->name, c->name);
                xnode_free(el);
                return;
            }
        }
        if (g == NULL) {
            g = xcalloc(1, sizeof(*g));
            g->name = xstrdup(x->name);
            mvec_push(&cfg_groups, g);
        }
        for (struct xnode *c = el->child; c != NULL; c = c->next) {
            char *v = xtext(c);

            if (!strs_has(&g->members, v)) {
                mvec_push(&g->members, v);
            } else {
                free(v);
            }
        }
    } else {
        reply_line(a->r, 12, "set of a member xpath is unexpected here");
        xnode_free(el);
        return;
    }
    xnode_free(el);
    ccnt.set++;
    cfg_dirty = 1;
    reply_ok(a->r, 20, "command succeeded");
}

static void
config_delete(struct papi *a, const struct xp *x)
{
    if (x->kind == XP_ADDR) {
        struct cfg_addr *ad = addr_find(x->name);

        if (ad == NULL) {
            reply_ok(a->r, 7, "Object doesn't exist");
            return;
        }
        for (size_t i = 0; i < cfg_groups.n; i++) {
            struct cfg_group *g = cfg_groups.v[i];

            if (strs_has(&g->members, x->name)) {
                ccnt.config_rejected++;
                reply_line(a->r, 10,
                           "Object %s is referenced by address-group -> %s -> static; "
                           "reference count not zero",
                           x->name, g->name);
                return;
            }
        }
        mvec_remove(&cfg_addrs, ad);
        addr_free(ad);
    } else {
        struct cfg_group *g = group_find(x->name);
        char *found = NULL;

        for (size_t i = 0; g != NULL && i < g->members.n; i++) {
            if (x->kind == XP_GROUP_STATIC || strcmp(g->members.v[i], x->member) == 0) {
                found = g->members.v[i];
            }
        }
        if (found == NULL) {
            reply_ok(a->r, 7, "Object doesn't exist");
            return;
        }
        if (x->kind == XP_GROUP_STATIC) {
            strs_free(&g->members);
        } else {
            mvec_remove(&g->members, found);
            free(found);
        }
    }
    ccnt.del++;
    cfg_dirty = 1;
    reply_ok(a->r, 20, "command succeeded");
}

static void
config_get(struct papi *a, const struct xp *x)
{
    struct buf b;

    ccnt.get++;
    buf_init(&b, 0);
    out_s(&b, "<response status=\"success\" code=\"19\"><result>");
    if (x->kind == XP_ADDR && addr_find(x->name) != NULL) {
        const struct cfg_addr *ad = addr_find(x->name);

        out_s(&b, "<entry name=\"");
        out_esc(&b, ad->name);
        out_s(&b, "\"><ip-netmask>");
        out_esc(&b, ad->netmask);
        out_s(&b, "</ip-netmask>");
        if (ad->description != NULL) {
            out_s(&b, "<description>");
            out_esc(&b, ad->description);
            out_s(&b, "</description>");
        }
        if (ad->tags.n > 0) {
            out_s(&b, "<tag>");
            for (size_t i = 0; i < ad->tags.n; i++) {
                out_s(&b, "<member>");
                out_esc(&b, ad->tags.v[i]);
                out_s(&b, "</member>");
            }
            out_s(&b, "</tag>");
        }
        out_s(&b, "</entry>");
    } else if (x->kind != XP_ADDR && group_find(x->name) != NULL) {
        const struct cfg_group *g = group_find(x->name);

        out_s(&b, "<static>");
        for (size_t i = 0; i < g->members.n; i++) {
            out_s(&b, "<member>");
            out_esc(&b, g->members.v[i]);
            out_s(&b, "</member>");
        }
        out_s(&b, "</static>");
    }
    out_s(&b, "</result></response>");
    reply(a->r, 200, &b);
}

/* type=config&action=set|edit|delete|get&xpath=..[&element=..] */
static void
config(struct papi *a, const char *admin)
{
    const char *action = param(a, "action"), *xpath = param(a, "xpath");
    struct xp x;

    if (action == NULL || xpath == NULL) {
        cnt.bad_request++;
        panos_error(a->r, 400, 400,
                    action == NULL ? "Missing parameter: action" : "Missing parameter: xpath");
        return;
    }
    if (xp_parse(xpath, &x) == -1) {
        ccnt.config_rejected++;
        reply_line(a->r, 6,
                   "Invalid xpath: %s (kagari-mock simulates address objects and "
                   "static address groups)",
                   xpath);
        return;
    }
    if (strcmp(action, "get") == 0 || strcmp(action, "show") == 0) {
        config_get(a, &x);
        return;
    }
    if (ctl.lock != NULL && strcmp(ctl.lock, admin) != 0) {
        ccnt.locked++;
        reply_line(a->r, 14, "Configuration is locked by %s", ctl.lock);
        return;
    }
    if (strcmp(action, "set") == 0 || strcmp(action, "edit") == 0) {
        config_set(a, &x);
    } else if (strcmp(action, "delete") == 0) {
        config_delete(a, &x);
    } else {
        reply_line(a->r, 17, "action %s is not simulated by kagari-mock", action);
    }
}

static struct commit_job *
job_running(void)
{
    for (size_t i = 0; i < jobs.n; i++) {
        struct commit_job *j = jobs.v[i];

        if (!j->finished) {
            return j;
        }
    }
    return NULL;
}

static struct commit_job *
job_new(const char *admin)
{
    struct commit_job *j = xcalloc(1, sizeof(*j));

    j->id = next_job++;
    snprintf(j->admin, sizeof(j->admin), "%s", admin);
    j->needed = ctl.commit_polls > 0 ? ctl.commit_polls : mock.cfg.poll_steps;
    mvec_push(&jobs, j);
    return j;
}

/* The commit is validated when its job finishes: every static group member must be an
 * address object; a forced failure (control) fails it with its lines. */
static void
job_finish(struct commit_job *j)
{
    struct buf why;

    j->finished = 1;
    buf_init(&why, 0);
    for (size_t i = 0; i < cfg_groups.n; i++) {
        const struct cfg_group *g = cfg_groups.v[i];

        for (size_t k = 0; k < g->members.n; k++) {
            if (addr_find(g->members.v[k]) == NULL) {
                out_f(&why, "%saddress-group -> %s -> static '%s' is not a valid reference",
                      why.len ? "\n" : "", g->name, (const char *)g->members.v[k]);
            }
        }
    }
    if (ctl.fail != NULL) {
        out_f(&why, "%s%s", why.len ? "\n" : "", ctl.fail);
        free(ctl.fail);
        ctl.fail = NULL;
    }
    if (why.len > 0) {
        j->ok = 0;
        j->details = buf_take(&why);
        ccnt.jobs_failed++;
    } else {
        j->ok = 1;
        j->details = xstrdup("Configuration committed successfully");
        cfg_dirty = 0;
        ccnt.jobs_ok++;
        buf_free(&why);
    }
}

/* type=commit&cmd=<commit>...</commit> */
static void
commit(struct papi *a, const char *admin)
{
    struct xnode *doc;
    struct commit_job *j;
    struct buf b;

    if ((doc = parse_cmd(a, param(a, "cmd"))) == NULL) {
        return;
    }
    if (strcmp(doc->name, "commit") != 0) {
        reply_line(a->r, 17, "%s is unexpected (expected commit)", doc->name);
        xnode_free(doc);
        return;
    }
    xnode_free(doc);
    ccnt.commit++;
    if (ctl.lock != NULL && strcmp(ctl.lock, admin) != 0) {
        ccnt.locked++;
        reply_line(a->r, 13, "Commit failed: configuration is locked by %s", ctl.lock);
        return;
    }
    if (job_running() != NULL) {
        ccnt.in_progress++;
        reply_line(a->r, 13, "Another commit/validate is in progress. Please try again later");
        return;
    }
    if (!cfg_dirty) {
        ccnt.no_changes++;
        buf_init(&b, 0);
        out_s(&b, "<response status=\"success\" code=\"19\"><msg>There are no changes to "
                  "commit.</msg></response>");
        reply(a->r, 200, &b);
        return;
    }
    j = job_new(admin);
    buf_init(&b, 0);
    out_f(&b,
          "<response status=\"success\" code=\"19\"><result><msg><line>Commit job enqueued with "
          "jobid %d</line></msg><job>%d</job></result></response>",
          j->id, j->id);
    reply(a->r, 200, &b);
}

static void
job_xml(struct buf *b, const struct commit_job *j)
{
    out_f(b, "<job><id>%d</id><type>Commit</type><user>", j->id);
    out_esc(b, j->admin);
    out_f(b, "</user><status>%s</status><result>%s</result><progress>%d</progress><details>",
          j->finished ? "FIN" : "ACT",
          !j->finished ? "PEND"
          : j->ok      ? "OK"
                       : "FAIL",
          j->finished ? 100 : (j->polls * 100) / (j->needed + 1));
    if (j->details != NULL && j->finished) {
        const char *p = j->details;

        while (*p != '\0') {
            size_t len = strcspn(p, "\n");
            char *line = xstrndup(p, len);

            out_s(b, "<line>");
            out_esc(b, line);
            out_s(b, "</line>");
            free(line);
            p += len;
            if (*p == '\n') {
                p++;
            }
        }
    }
    out_s(b, "</details><warnings/></job>");
}

/* <show><jobs><all/></jobs></show> lists every job (no side effect); <show><jobs><id>N
 * </id></jobs></show> is a poll: the job finishes on its Nth poll. */
static void
show_jobs(struct papi *a, const struct xnode *jn)
{
    const struct xnode *idn = xchild(jn, "id");
    struct buf b;

    buf_init(&b, 0);
    if (idn != NULL) {
        char *s = xtext(idn);
        struct commit_job *j = NULL;

        for (size_t i = 0; i < jobs.n; i++) {
            if (atoi(s) == ((struct commit_job *)jobs.v[i])->id && s[0] >= '0' && s[0] <= '9') {
                j = jobs.v[i];
            }
        }
        if (j == NULL) {
            reply_line(a->r, 7, "job %s not found", s);
            free(s);
            buf_free(&b);
            return;
        }
        free(s);
        ccnt.job_polls++;
        if (!j->finished && ++j->polls >= j->needed) {
            job_finish(j);
        }
        out_s(&b, "<response status=\"success\"><result>");
        job_xml(&b, j);
    } else {
        out_s(&b, "<response status=\"success\"><result>");
        for (size_t i = jobs.n; i > 0; i--) {
            job_xml(&b, jobs.v[i - 1]);
        }
    }
    out_s(&b, "</result></response>");
    reply(a->r, 200, &b);
}

cJSON *
panos_config_json(void)
{
    cJSON *o = cJSON_CreateObject(), *addrs = cJSON_AddArrayToObject(o, "addresses");
    cJSON *groups = cJSON_AddArrayToObject(o, "groups"), *js = cJSON_AddArrayToObject(o, "jobs");
    cJSON *c = cJSON_AddObjectToObject(o, "counters");

    for (size_t i = 0; i < cfg_addrs.n; i++) {
        const struct cfg_addr *ad = cfg_addrs.v[i];
        cJSON *e = cJSON_CreateObject(), *t = cJSON_AddArrayToObject(e, "tags");

        cJSON_AddStringToObject(e, "name", ad->name);
        cJSON_AddStringToObject(e, "ip-netmask", ad->netmask);
        if (ad->description != NULL) {
            cJSON_AddStringToObject(e, "description", ad->description);
        }
        for (size_t k = 0; k < ad->tags.n; k++) {
            cJSON_AddItemToArray(t, cJSON_CreateString(ad->tags.v[k]));
        }
        cJSON_AddItemToArray(addrs, e);
    }
    for (size_t i = 0; i < cfg_groups.n; i++) {
        const struct cfg_group *g = cfg_groups.v[i];
        cJSON *e = cJSON_CreateObject(), *m = cJSON_AddArrayToObject(e, "static");

        cJSON_AddStringToObject(e, "name", g->name);
        for (size_t k = 0; k < g->members.n; k++) {
            cJSON_AddItemToArray(m, cJSON_CreateString(g->members.v[k]));
        }
        cJSON_AddItemToArray(groups, e);
    }
    for (size_t i = 0; i < jobs.n; i++) {
        const struct commit_job *j = jobs.v[i];
        cJSON *e = cJSON_CreateObject();

        cJSON_AddNumberToObject(e, "id", j->id);
        cJSON_AddStringToObject(e, "admin", j->admin);
        cJSON_AddStringToObject(e, "status", j->finished ? "FIN" : "ACT");
        cJSON_AddStringToObject(e, "result", !j->finished ? "PEND" : j->ok ? "OK" : "FAIL");
        cJSON_AddNumberToObject(e, "polls", j->polls);
        cJSON_AddItemToArray(js, e);
    }
    cJSON_AddBoolToObject(o, "dirty", cfg_dirty);
    if (ctl.lock != NULL) {
        cJSON_AddStringToObject(o, "lock", ctl.lock);
    } else {
        cJSON_AddNullToObject(o, "lock");
    }
    cJSON_AddNumberToObject(c, "set", (double)ccnt.set);
    cJSON_AddNumberToObject(c, "delete", (double)ccnt.del);
    cJSON_AddNumberToObject(c, "get", (double)ccnt.get);
    cJSON_AddNumberToObject(c, "commit", (double)ccnt.commit);
    cJSON_AddNumberToObject(c, "no_changes", (double)ccnt.no_changes);
    cJSON_AddNumberToObject(c, "in_progress", (double)ccnt.in_progress);
    cJSON_AddNumberToObject(c, "locked", (double)ccnt.locked);
    cJSON_AddNumberToObject(c, "jobs_ok", (double)ccnt.jobs_ok);
    cJSON_AddNumberToObject(c, "jobs_failed", (double)ccnt.jobs_failed);
    cJSON_AddNumberToObject(c, "job_polls", (double)ccnt.job_polls);
    cJSON_AddNumberToObject(c, "config_rejected", (double)ccnt.config_rejected);
    return o;
}

/* POST /_mock/state/panos {"lock": "admin2"|null, "fail_next_commit": "line\nline"|null,
 * "commit_polls": N, "start_commit": "admin2"}: checked whole before anything applies. */
int
panos_control(const cJSON *o, char **errp)
{
    const cJSON *it;

    cJSON_ArrayForEach(it, o)
    {
        const char *k = it->string;

        if (strcmp(k, "lock") == 0 || strcmp(k, "fail_next_commit") == 0 ||
            strcmp(k, "start_commit") == 0) {
            if (!cJSON_IsNull(it) && (!cJSON_IsString(it) || it->valuestring[0] == '\0')) {
                return kg_err(errp, "%s: expected a non-empty string or null", k);
            }
        } else if (strcmp(k, "commit_polls") == 0) {
            if (!cJSON_IsNumber(it) || it->valuedouble < 0 || it->valuedouble > 1000) {
                return kg_err(errp, "commit_polls: expected 0 to 1000");
            }
        } else {
            return kg_err(errp, "unknown member %s", k);
        }
    }
    cJSON_ArrayForEach(it, o)
    {
        const char *k = it->string;
        const char *v = cJSON_IsString(it) ? it->valuestring : NULL;

        if (strcmp(k, "lock") == 0) {
            free(ctl.lock);
            ctl.lock = v != NULL ? xstrdup(v) : NULL;
        } else if (strcmp(k, "fail_next_commit") == 0) {
            free(ctl.fail);
            ctl.fail = v != NULL ? xstrdup(v) : NULL;
        } else if (strcmp(k, "commit_polls") == 0) {
            ctl.commit_polls = (int)it->valuedouble;
        } else if (strcmp(k, "start_commit") == 0 && v != NULL) {
            job_new(v);
        }
    }
    return 0;
}

/* ---- the route ---- */

/* Every /api/ request, GET (query) or POST (form body; query parameters count too):
 * keygen needs no key; anything else needs an admin's key (X-PAN-KEY or key=) or its
 * HTTP Basic credentials, else HTTP 403. */
static void
panos_api(struct mreq *r)
{
    struct papi a;
    const char *ctype = mhttp_header(r->h, "Content-Type");
    const char *type, *admin;

    memset(&a, 0, sizeof(a));
    a.r = r;
    uid_expire(mock_now());
    if (r->h->body_len > 0) {
        if (ctype == NULL || strncasecmp(ctype, "application/x-www-form-urlencoded", 33) != 0) {
            cnt.bad_request++;
            r->log_route = "panos.bad";
            panos_error(r, 400, 400,
                        "Unsupported Content-Type: send application/"
                        "x-www-form-urlencoded");
            return;
        }
        http_parse_query(r->h->body, &a.names, &a.values, &a.n);
    }
    type = param(&a, "type");
    if (type != NULL && strcmp(type, "keygen") == 0) {
        r->log_route = "panos.keygen";
        keygen(&a);
        goto out;
    }
    if ((admin = authorized(&a)) == NULL) {
        cnt.denied++;
        r->log_route = "panos.denied";
        deny(r);
        goto out;
    }
    if (type == NULL) {
        cnt.bad_request++;
        r->log_route = "panos.bad";
        panos_error(r, 400, 400, "Missing parameter: type");
    } else if (strcmp(type, "user-id") == 0) {
        r->log_route = "panos.user-id";
        user_id(&a);
    } else if (strcmp(type, "op") == 0) {
        r->log_route = "panos.op";
        op(&a);
    } else if (strcmp(type, "config") == 0) {
        r->log_route = "panos.config";
        config(&a, admin);
    } else if (strcmp(type, "commit") == 0) {
        r->log_route = "panos.commit";
        commit(&a, admin);
    } else if (strcmp(type, "export") == 0 || strcmp(type, "import") == 0 ||
               strcmp(type, "log") == 0 || strcmp(type, "report") == 0 ||
               strcmp(type, "version") == 0) {
        cnt.other++;
        r->log_route = "panos.other";
        reply_line(r, 1, "type=%s is not simulated by kagari-mock", type);
    } else {
        char *msg = xasprintf("Illegal value for parameter \"type\" [%s].", type);

        cnt.bad_request++;
        r->log_route = "panos.bad";
        panos_error(r, 400, 400, msg);
        free(msg);
    }
out:
    for (size_t i = 0; i < a.n; i++) {
        free(a.names[i]);
        free(a.values[i]);
    }
    free(a.names);
    free(a.values);
}

const struct route panos_routes[] = {
    { "GET", "/api", SVC_PANOS, "panos", panos_api, NULL, LIM_NONE, LIM_NONE },
    { "POST", "/api", SVC_PANOS, "panos", panos_api, NULL, LIM_NONE, LIM_NONE },
    { NULL, NULL, SVC_PANOS, NULL, NULL, NULL, LIM_NONE, LIM_NONE },
};
