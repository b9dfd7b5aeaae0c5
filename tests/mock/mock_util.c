/* mock_util.c: the mock's containers (vector, case-insensitive hash map), ids, times,
 * base64url, cJSON setters, the OData $filter subset, sliding-window limiters and paging
 * with absolute next links. */
#include "tests/mock/mock.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "engine/json.h"

/* ---- vector ---- */

void
mvec_push(struct mvec *vec, void *p)
{
    if (vec->n == vec->cap) {
        vec->cap = vec->cap ? vec->cap * 2 : 16;
        vec->v = xrealloc(vec->v, vec->cap * sizeof(void *));
    }
    vec->v[vec->n++] = p;
}

void
mvec_remove(struct mvec *vec, void *p)
{
    for (size_t i = 0; i < vec->n; i++) {
        if (vec->v[i] == p) {
            memmove(&vec->v[i], &vec->v[i + 1], (vec->n - i - 1) * sizeof(void *));
            vec->n--;
            return;
        }
    }
}

void
mvec_free(struct mvec *vec)
{
    free(vec->v);
    vec->v = NULL;
    vec->n = vec->cap = 0;
}

/* ---- hash map ---- */

struct mmap_entry {
    char *key;
    void *val;
    uint64_t h;
    struct mmap_entry *next;
};

static uint64_t
hash_ci(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s != '\0'; s++) {
        h ^= (unsigned char)tolower((unsigned char)*s);
        h *= 1099511628211ULL;
    }
    return h;
}

static void
mmap_grow(struct mmap *m)
{
    size_t nb = m->nb ? m->nb * 2 : 64;
    struct mmap_entry **b = xcalloc(nb, sizeof(*b));

    for (size_t i = 0; i < m->nb; i++) {
        struct mmap_entry *e = m->b[i], *next;

        for (; e != NULL; e = next) {
            next = e->next;
            e->next = b[e->h & (nb - 1)];
            b[e->h & (nb - 1)] = e;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
}

void
mmap_put(struct mmap *m, const char *key, void *val)
{
    uint64_t h = hash_ci(key);
    struct mmap_entry *e;

    if (m->nb > 0) {
        for (e = m->b[h & (m->nb - 1)]; e != NULL; e = e->next) {
            if (e->h == h && strcasecmp(e->key, key) == 0) {
                e->val = val;
                return;
            }
        }
    }
    if (m->n + 1 > m->nb) {
        mmap_grow(m);
    }
    e = xmalloc(sizeof(*e));
    e->key = xstrdup(key);
    e->val = val;
    e->h = h;
    e->next = m->b[h & (m->nb - 1)];
    m->b[h & (m->nb - 1)] = e;
    m->n++;
}

void *
mmap_get(const struct mmap *m, const char *key)
{
    uint64_t h;

    if (m->nb == 0 || key == NULL) {
        return NULL;
    }
    h = hash_ci(key);
    for (struct mmap_entry *e = m->b[h & (m->nb - 1)]; e != NULL; e = e->next) {
        if (e->h == h && strcasecmp(e->key, key) == 0) {
            return e->val;
        }
    }
    return NULL;
}

void
mmap_del(struct mmap *m, const char *key)
{
    uint64_t h;
    struct mmap_entry **pp;

    if (m->nb == 0) {
        return;
    }
    h = hash_ci(key);
    for (pp = &m->b[h & (m->nb - 1)]; *pp != NULL; pp = &(*pp)->next) {
        struct mmap_entry *e = *pp;

        if (e->h == h && strcasecmp(e->key, key) == 0) {
            *pp = e->next;
            free(e->key);
            free(e);
            m->n--;
            return;
        }
    }
}

void
mmap_clear(struct mmap *m)
{
    for (size_t i = 0; i < m->nb; i++) {
        struct mmap_entry *e = m->b[i], *next;

        for (; e != NULL; e = next) {
            next = e->next;
            free(e->key);
            free(e);
        }
    }
    free(m->b);
    m->b = NULL;
    m->nb = m->n = 0;
}

void
mmap_each(const struct mmap *m, void (*fn)(void *val, void *arg), void *arg)
{
    for (size_t i = 0; i < m->nb; i++) {
        for (struct mmap_entry *e = m->b[i]; e != NULL; e = e->next) {
            fn(e->val, arg);
        }
    }
}

/* ---- ids and times ---- */

static uint64_t rng_state = 88172645463325252ULL;

void
mock_rand_init(void)
{
    uint64_t s;

    if (util_random(&s, sizeof(s)) == 0 && s != 0) {
        rng_state = s;
    }
}

static uint64_t
rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

void
mock_uuid(char out[37])
{
    uint64_t a = rng_next(), b = rng_next();

    snprintf(out, 37, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32),
             (unsigned)((a >> 16) & 0xffff), (unsigned)(a & 0xfff),
             (unsigned)(0x8000 | ((b >> 48) & 0x3fff)),
             (unsigned long long)(b & 0xffffffffffffULL));
}

void
mock_seq_uuid(uint32_t prefix, uint64_t n, char out[37])
{
    snprintf(out, 37, "%08x-0000-4000-8000-%012llx", prefix,
             (unsigned long long)(n & 0xffffffffffffULL));
}

void
mock_fmt_now(char out[32])
{
    util_fmt_time(mock_now(), out);
}

void
mock_fmt_aad_time(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&secs, &tm);
    strftime(out, 32, "%Y-%m-%d %H:%M:%SZ", &tm);
}

int64_t
mock_parse_time_or(const char *s, int64_t dflt)
{
    int64_t ms;

    if (s == NULL || util_parse_time(s, &ms) == -1) {
        return dflt;
    }
    return ms;
}

/* "@now", "@now-5m" ... -> ms; 0 when s is not such a string. */
static int
relative_time(const char *s, int64_t now, int64_t *out)
{
    const char *p;
    char *end;
    long long n;
    int64_t unit;

    if (strncmp(s, "@now", 4) != 0) {
        return 0;
    }
    p = s + 4;
    if (*p == '\0') {
        *out = now;
        return 1;
    }
    if (*p != '-' && *p != '+') {
        return 0;
    }
    n = strtoll(p + 1, &end, 10);
    if (end == p + 1 || end[0] == '\0' || end[1] != '\0') {
        return 0;
    }
    switch (*end) {
    case 's':
        unit = 1000;
        break;
    case 'm':
        unit = 60000;
        break;
    case 'h':
        unit = 3600000;
        break;
    case 'd':
        unit = 86400000;
        break;
    default:
        return 0;
    }
    *out = now + (*p == '-' ? -1 : 1) * (int64_t)n * unit;
    return 1;
}

void
mock_resolve_times(cJSON *item, int64_t now_ms)
{
    cJSON *c;

    if (cJSON_IsString(item)) {
        int64_t t;

        if (relative_time(item->valuestring, now_ms, &t)) {
            char buf[32];

            util_fmt_time(t, buf);
            cJSON_SetValuestring(item, buf);
        }
        return;
    }
    cJSON_ArrayForEach(c, item)
    {
        mock_resolve_times(c, now_ms);
    }
}

/* ---- base64 ---- */

char *
mock_b64url_encode(const unsigned char *p, size_t n)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char *out = xmalloc(n * 4 / 3 + 4);
    size_t o = 0, i;

    for (i = 0; i + 2 < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];

        out[o++] = al[v >> 18];
        out[o++] = al[(v >> 12) & 63];
        out[o++] = al[(v >> 6) & 63];
        out[o++] = al[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)p[i] << 16;

        out[o++] = al[v >> 18];
        out[o++] = al[(v >> 12) & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;

        out[o++] = al[v >> 18];
        out[o++] = al[(v >> 12) & 63];
        out[o++] = al[(v >> 6) & 63];
    }
    out[o] = '\0';
    return out;
}

static int
b64val(unsigned char c, int url)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == (url ? '-' : '+')) {
        return 62;
    }
    if (c == (url ? '_' : '/')) {
        return 63;
    }
    return -1;
}

static unsigned char *
b64_decode_any(const char *s, size_t n, size_t *outlen, int url)
{
    unsigned char *out = xmalloc(n * 3 / 4 + 4);
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;

    while (n > 0 && s[n - 1] == '=') {
        n--;
    }
    for (size_t i = 0; i < n; i++) {
        int v = b64val((unsigned char)s[i], url);

        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (n % 4 == 1) {
        free(out);
        return NULL;
    }
    out[o] = '\0';
    *outlen = o;
    return out;
}

unsigned char *
mock_b64url_decode(const char *s, size_t n, size_t *outlen)
{
    return b64_decode_any(s, n, outlen, 1);
}

unsigned char *
mock_b64_decode(const char *s, size_t n, size_t *outlen)
{
    return b64_decode_any(s, n, outlen, 0);
}

/* ---- cJSON setters ---- */

void
jset(cJSON *obj, const char *key, cJSON *val)
{
    if (cJSON_GetObjectItemCaseSensitive(obj, key) != NULL) {
        cJSON_ReplaceItemInObjectCaseSensitive(obj, key, val);
    } else {
        cJSON_AddItemToObject(obj, key, val);
    }
}

void
jset_str(cJSON *obj, const char *key, const char *s)
{
    jset(obj, key, s != NULL ? cJSON_CreateString(s) : cJSON_CreateNull());
}

const char *
jstr(const cJSON *obj, const char *key)
{
    return json_get_string(obj, key);
}

/* ---- $filter ---- */

static const char *
skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    return p;
}

/* Parse an OData string literal at p ('...' with '' for a quote). */
static const char *
parse_quoted(const char *p, char **out)
{
    struct buf b;

    if (*p != '\'') {
        return NULL;
    }
    buf_init(&b, 0);
    for (p++;; p++) {
        if (*p == '\0') {
            buf_free(&b);
            return NULL;
        }
        if (*p == '\'') {
            if (p[1] == '\'') {
                (void)!buf_append(&b, "'", 1);
                p++;
                continue;
            }
            break;
        }
        (void)!buf_append(&b, p, 1);
    }
    *out = b.data != NULL ? buf_take(&b) : xstrdup("");
    return p + 1;
}

static const struct fprop *
find_prop(const struct fprop *props, const char *name, size_t n)
{
    for (; props->name != NULL; props++) {
        if (strlen(props->name) == n && strncasecmp(props->name, name, n) == 0) {
            return props;
        }
    }
    return NULL;
}

/* Parse a literal and check it against the property's type. */
static const char *
parse_literal(const char *p, struct fclause *c, char **errp)
{
    const struct fprop *pr = c->p;
    char tok[80];
    size_t n = 0;

    if (*p == '\'') {
        p = parse_quoted(p, &c->s);
        if (p == NULL) {
            kg_err(errp, "unterminated string literal");
            return NULL;
        }
        if (pr->type != FT_STR) {
            kg_err(errp, "property '%s' is not a string: compare it with an unquoted %s", pr->name,
                   pr->type == FT_DATE ? "DateTimeOffset" : "value");
            return NULL;
        }
        return p;
    }
    while (p[n] != '\0' && p[n] != ' ' && p[n] != ')' && n + 1 < sizeof(tok)) {
        tok[n] = p[n];
        n++;
    }
    tok[n] = '\0';
    if (n == 0) {
        kg_err(errp, "missing value after the operator");
        return NULL;
    }
    if (strcmp(tok, "null") == 0) {
        if (!(c->op == OP_EQ || c->op == OP_NE)) {
            kg_err(errp, "null only compares with eq or ne");
            return NULL;
        }
        c->is_null = 1;
        return p + n;
    }
    switch (pr->type) {
    case FT_STR:
        kg_err(errp, "value '%s' for '%s' must be a quoted string", tok, pr->name);
        return NULL;
    case FT_DATE:
        if (strchr(tok, 'T') == NULL || util_parse_time(tok, &c->ms) == -1) {
            kg_err(errp, "'%s' is not a DateTimeOffset literal (2025-06-01T00:00:00Z)", tok);
            return NULL;
        }
        return p + n;
    case FT_NUM: {
        char *end;

        c->num = strtod(tok, &end);
        if (*end != '\0' || !isfinite(c->num)) {
            kg_err(errp, "'%s' is not a number", tok);
            return NULL;
        }
        return p + n;
    }
    case FT_BOOL:
        if (strcmp(tok, "true") == 0) {
            c->b = 1;
        } else if (strcmp(tok, "false") == 0) {
            c->b = 0;
        } else {
            kg_err(errp, "'%s' is not true or false", tok);
            return NULL;
        }
        return p + n;
    default:
        kg_err(errp, "bad property type");
        return NULL;
    }
}

static const char *
parse_clause(const char *p, const struct fprop *props, struct fclause *c, char **errp)
{
    static const struct {
        const char *w;
        int op;
    } ops[] = { { "eq", OP_EQ }, { "ne", OP_NE }, { "gt", OP_GT },
                { "ge", OP_GE }, { "lt", OP_LT }, { "le", OP_LE } };
    const char *name;
    size_t n = 0;

    memset(c, 0, sizeof(*c));
    if (strncasecmp(p, "startswith(", 11) == 0) {
        p = skip_ws(p + 11);
        name = p;
        while (p[n] != '\0' && p[n] != ',' && p[n] != ' ') {
            n++;
        }
        c->p = find_prop(props, name, n);
        if (c->p == NULL || !(c->p->ops & OP_SW)) {
            kg_err(errp, "startswith on '%.*s' is not supported", (int)n, name);
            return NULL;
        }
        c->op = OP_SW;
        p = skip_ws(p + n);
        if (*p != ',') {
            kg_err(errp, "startswith: expected ','");
            return NULL;
        }
        p = skip_ws(p + 1);
        p = parse_quoted(p, &c->s);
        if (p == NULL) {
            kg_err(errp, "startswith: expected a quoted string");
            return NULL;
        }
        p = skip_ws(p);
        if (*p != ')') {
            kg_err(errp, "startswith: expected ')'");
            return NULL;
        }
        return p + 1;
    }
    name = p;
    while (p[n] != '\0' && p[n] != ' ' && p[n] != '(') {
        n++;
    }
    if (p[n] == '(') {
        kg_err(errp, "function '%.*s' is not supported", (int)n, name);
        return NULL;
    }
    c->p = find_prop(props, name, n);
    if (c->p == NULL) {
        kg_err(errp, "filtering on '%.*s' is not supported", (int)n, name);
        return NULL;
    }
    p = skip_ws(p + n);
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strncmp(p, ops[i].w, 2) == 0 && p[2] == ' ') {
            c->op = ops[i].op;
            break;
        }
    }
    if (c->op == 0) {
        kg_err(errp, "unsupported operator after '%s'", c->p->name);
        return NULL;
    }
    if (!(c->p->ops & c->op)) {
        kg_err(errp, "operator '%.2s' is not supported on '%s'", p, c->p->name);
        return NULL;
    }
    p = skip_ws(p + 3);
    return parse_literal(p, c, errp);
}

int
filter_parse(const char *text, const struct fprop *props, struct filter *f, char **errp)
{
    const char *p = skip_ws(text);

    memset(f, 0, sizeof(*f));
    if (*p == '\0') {
        return kg_err(errp, "empty $filter");
    }
    for (;;) {
        if (f->n == FILTER_MAX) {
            filter_free(f);
            return kg_err(errp, "too many clauses in $filter");
        }
        p = parse_clause(p, props, &f->c[f->n], errp);
        f->n++;
        if (p == NULL) {
            filter_free(f);
            return -1;
        }
        p = skip_ws(p);
        if (*p == '\0') {
            return 0;
        }
        if (strncasecmp(p, "and ", 4) != 0) {
            filter_free(f);
            return kg_err(errp, "only 'and' joins clauses; unsupported at '%.20s'", p);
        }
        p = skip_ws(p + 4);
    }
}

void
filter_free(struct filter *f)
{
    for (int i = 0; i < f->n; i++) {
        free(f->c[i].s);
        f->c[i].s = NULL;
    }
    f->n = 0;
}

static const cJSON *
walk(const cJSON *obj, const char *path)
{
    char seg[64];

    while (obj != NULL && *path != '\0') {
        const char *sl = strchr(path, '/');
        size_t n = sl != NULL ? (size_t)(sl - path) : strlen(path);

        if (n >= sizeof(seg)) {
            return NULL;
        }
        memcpy(seg, path, n);
        seg[n] = '\0';
        obj = json_get(obj, seg);
        path += n + (sl != NULL ? 1 : 0);
    }
    return obj;
}

static int
cmp_result(int op, double d)
{
    switch (op) {
    case OP_EQ:
        return d == 0;
    case OP_NE:
        return d != 0;
    case OP_GT:
        return d > 0;
    case OP_GE:
        return d >= 0;
    case OP_LT:
        return d < 0;
    case OP_LE:
        return d <= 0;
    default:
        return 0;
    }
}

static int
clause_match(const struct fclause *c, const cJSON *obj)
{
    const cJSON *v = walk(obj, c->p->name);

    if (c->is_null) {
        int isnull = v == NULL || cJSON_IsNull(v);

        return c->op == OP_EQ ? isnull : !isnull;
    }
    if (v == NULL || cJSON_IsNull(v)) {
        return c->op == OP_NE;
    }
    switch (c->p->type) {
    case FT_STR:
        if (!cJSON_IsString(v)) {
            return 0;
        }
        if (c->op == OP_SW) {
            return strncasecmp(v->valuestring, c->s, strlen(c->s)) == 0;
        }
        return cmp_result(c->op, (double)strcasecmp(v->valuestring, c->s));
    case FT_DATE: {
        int64_t ms;

        if (!cJSON_IsString(v) || util_parse_time(v->valuestring, &ms) == -1) {
            return 0;
        }
        return cmp_result(c->op, ms < c->ms ? -1.0 : ms > c->ms ? 1.0 : 0.0);
    }
    case FT_NUM:
        if (!cJSON_IsNumber(v)) {
            return 0;
        }
        return cmp_result(c->op, v->valuedouble - c->num);
    case FT_BOOL:
        if (!cJSON_IsBool(v)) {
            return 0;
        }
        return cmp_result(c->op, (double)(cJSON_IsTrue(v) != c->b));
    default:
        return 0;
    }
}

int
filter_match(const struct filter *f, const cJSON *obj)
{
    for (int i = 0; i < f->n; i++) {
        if (!clause_match(&f->c[i], obj)) {
            return 0;
        }
    }
    return 1;
}

/* ---- limiter ---- */

int64_t
limiter_take(struct limiter *l, int limit, int64_t window_ms, int64_t now)
{
    if (limit <= 0) {
        return 0;
    }
    if (l->limit != limit) {
        free(l->t);
        l->t = xcalloc((size_t)limit, sizeof(int64_t));
        l->limit = limit;
        l->head = l->n = 0;
    }
    if (l->n == limit) {
        int64_t oldest = l->t[l->head];

        if (now - oldest < window_ms) {
            return oldest + window_ms - now;
        }
        l->head = (l->head + 1) % limit;
        l->n--;
    }
    l->t[(l->head + l->n) % limit] = now;
    l->n++;
    return 0;
}

void
limiter_reset(struct limiter *l)
{
    free(l->t);
    memset(l, 0, sizeof(*l));
}

/* ---- paging ---- */

/* The raw query without its $skiptoken (and $skip when drop_skip) parameters. */
static char *
query_without_token(const char *query, int drop_skip)
{
    struct buf b;
    const char *p = query;

    buf_init(&b, 0);
    while (p != NULL && *p != '\0') {
        const char *amp = strchr(p, '&');
        size_t n = amp != NULL ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', n);
        char *name = http_url_decode(p, eq != NULL ? (size_t)(eq - p) : n, 1);
        int drop = name == NULL || strcmp(name, "$skiptoken") == 0 ||
                   (drop_skip && strcmp(name, "$skip") == 0);

        if (!drop && n > 0) {
            if (b.len > 0) {
                (void)!buf_append(&b, "&", 1);
            }
            (void)!buf_append(&b, p, n);
        }
        free(name);
        p = amp != NULL ? amp + 1 : NULL;
    }
    return b.data != NULL ? buf_take(&b) : xstrdup("");
}

static void
token_mac(const char *path, const char *rest, size_t off, int empty, char out[17])
{
    char *text = xasprintf("%s|%s|%s|%zu|%d", mock.salt, path, rest, off, empty);
    char hex[65];

    util_sha256_hex(text, strlen(text), hex);
    memcpy(out, hex, 16);
    out[16] = '\0';
    free(text);
}

/* Decode "<offset hex>.<e>.<mac>"; -1 when it was not made for this query. */
static int
token_decode(const char *tok, const char *path, const char *rest, size_t *off, int *empty)
{
    char mac[17];
    unsigned long long o;
    int e, used = 0;
    char got[17];

    if (sscanf(tok, "%llx.%d.%16[0-9a-f]%n", &o, &e, got, &used) != 3 || tok[used] != '\0' ||
        (e != 0 && e != 1)) {
        return -1;
    }
    token_mac(path, rest, (size_t)o, e, mac);
    if (strcmp(mac, got) != 0) {
        return -1;
    }
    *off = (size_t)o;
    *empty = e;
    return 0;
}

/* The next link from the configured template: {base}, {path} and {query} replaced. */
static char *
next_link_expand(const char *tpl, const char *base, const char *path, const char *query)
{
    static const struct {
        const char *name;
        size_t len;
    } vars[] = { { "{base}", 6 }, { "{path}", 6 }, { "{query}", 7 } };
    const char *vals[3] = { base, path, query };
    struct buf b;

    buf_init(&b, 0);
    while (*tpl != '\0') {
        size_t k;

        for (k = 0; k < 3 && strncmp(tpl, vars[k].name, vars[k].len) != 0; k++) {
        }
        if (k < 3) {
            (void)!buf_puts(&b, vals[k]);
            tpl += vars[k].len;
        } else {
            (void)!buf_append(&b, tpl, 1);
            tpl++;
        }
    }
    return b.data != NULL ? buf_take(&b) : xstrdup("");
}

static int
parse_count(const char *s, size_t *out)
{
    char *end;
    long long v;

    if (s == NULL) {
        return 0;
    }
    v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || v < 0) {
        return -1;
    }
    *out = (size_t)v;
    return 1;
}

int
mock_page(struct mreq *r, void **items, size_t n, size_t def_size, size_t max_size,
          const char *context, render_fn fn, void *ctx)
{
    const char *tok = mhttp_param(r->h, "$skiptoken");
    const char *count = mhttp_param(r->h, "$count");
    size_t top = 0, skip = 0, off = 0, size;
    int has_top, empty = 0;
    char *rest = query_without_token(r->h->query, 0);
    cJSON *out, *arr;

    has_top = parse_count(mhttp_param(r->h, "$top"), &top);
    if (has_top < 0 || (has_top && top == 0) ||
        parse_count(mhttp_param(r->h, "$skip"), &skip) < 0) {
        free(rest);
        mreq_error(r, 400, "BadRequest", "Invalid value for $top or $skip.");
        return -1;
    }
    if (tok != NULL) {
        if (token_decode(tok, r->h->path, rest, &off, &empty) == -1) {
            free(rest);
            mreq_error(r, 400, "BadRequest",
                       "Invalid $skiptoken: it does not belong to this query.");
            return -1;
        }
    } else {
        off = skip;
    }
    size = has_top ? top : def_size;
    if (size > max_size) {
        size = max_size;
    }
    if (mock.cfg.page_size > 0 && size > (size_t)mock.cfg.page_size) {
        size = (size_t)mock.cfg.page_size;
    }
    out = cJSON_CreateObject();
    {
        char *c = xasprintf("%s/v1.0/$metadata#%s", r->base, context);

        cJSON_AddStringToObject(out, "@odata.context", c);
        free(c);
    }
    if (tok == NULL && count != NULL && strcmp(count, "true") == 0) {
        cJSON_AddNumberToObject(out, "@odata.count", (double)n);
    }
    arr = cJSON_AddArrayToObject(out, "value");
    if (!empty) {
        for (size_t i = off; i < n && i < off + size; i++) {
            cJSON_AddItemToArray(arr, fn(items[i], r, ctx));
        }
    }
    {
        size_t next = empty ? off : off + size;
        int next_empty = 0;

        if (!empty && tok == NULL && mock.cfg.empty_page && next < n) {
            next_empty = 1;
        }
        if (next < n) {
            char mac[17], *link;

            token_mac(r->h->path, rest, next, next_empty, mac);
            if (mock.next_link != NULL) {
                char *q = xasprintf("%s%s$skiptoken=%zx.%d.%s", rest, rest[0] != '\0' ? "&" : "",
                                    next, next_empty, mac);

                link = next_link_expand(mock.next_link, r->base, r->h->raw_path, q);
                free(q);
            } else {
                link = xasprintf("%s%s?%s%s$skiptoken=%zx.%d.%s", r->base, r->h->raw_path, rest,
                                 rest[0] != '\0' ? "&" : "", next, next_empty, mac);
            }
            cJSON_AddStringToObject(out, "@odata.nextLink", link);
            free(link);
        }
    }
    free(rest);
    mreq_json(r, 200, out);
    return 0;
}

int
mock_list_mde(struct mreq *r, void **items, size_t n, const char *context, render_fn fn, void *ctx)
{
    size_t top = 10000, skip = 0;
    int has_top = parse_count(mhttp_param(r->h, "$top"), &top);
    cJSON *out, *arr;

    if (has_top < 0 || top > 10000 || parse_count(mhttp_param(r->h, "$skip"), &skip) < 0) {
        mreq_error(r, 400, "InvalidInput", "$top must be between 0 and 10000; $skip >= 0.");
        return -1;
    }
    if (!has_top) {
        top = 10000;
    }
    out = cJSON_CreateObject();
    {
        char *c = xasprintf("%s/api/$metadata#%s", r->base, context);

        cJSON_AddStringToObject(out, "@odata.context", c);
        free(c);
    }
    arr = cJSON_AddArrayToObject(out, "value");
    for (size_t i = skip; i < n && i < skip + top; i++) {
        cJSON_AddItemToArray(arr, fn(items[i], r, ctx));
    }
    mreq_json(r, 200, out);
    return 0;
}
