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

void
panos_reset(void)
{
    uid_clear();
    memset(&cnt, 0, sizeof(cnt));
}

void
panos_free(void)
{
    uid_clear();
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

/* The key from X-PAN-KEY or key=, else HTTP Basic credentials. */
static int
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
                return 1;
            }
        }
        return 0;
    }
    if (auth != NULL && strncasecmp(auth, "Basic ", 6) == 0) {
        size_t len;
        unsigned char *dec = mock_b64_decode(auth + 6, strlen(auth + 6), &len);
        char *colon = dec != NULL ? strchr((char *)dec, ':') : NULL;
        int ok = 0;

        if (colon != NULL && strlen((char *)dec) == len) {
            *colon = '\0';
            ok = admin_by_password((char *)dec, colon + 1) != NULL;
        }
        free(dec);
        return ok;
    }
    return 0;
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

static void
op(struct papi *a)
{
    const char *cmd = param(a, "cmd");
    struct xnode *doc = NULL, *obj, *rip;

    cnt.op++;
    if ((doc = parse_cmd(a, cmd)) == NULL) {
        return;
    }
    if (strcmp(doc->name, "show") != 0 || doc->child == NULL) {
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

/* ---- the route ---- */

/* Every /api/ request, GET (query) or POST (form body; query parameters count too):
 * keygen needs no key; anything else needs an admin's key (X-PAN-KEY or key=) or its
 * HTTP Basic credentials, else HTTP 403. */
static void
panos_api(struct mreq *r)
{
    struct papi a;
    const char *ctype = mhttp_header(r->h, "Content-Type");
    const char *type;

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
    if (!authorized(&a)) {
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
    } else if (strcmp(type, "config") == 0 || strcmp(type, "commit") == 0 ||
               strcmp(type, "export") == 0 || strcmp(type, "import") == 0 ||
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
