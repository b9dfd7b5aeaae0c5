/* normlib.c: helpers of the source-specific normalizers: lenient member reads, checked
 * observables, vendor time formats, ids, titles and severity arithmetic. */
#include "engine/normlib.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/json.h"

/* Members are compared in place, byte by byte as the path is walked (no copy of a
 * segment, no strlen, strchr or strncmp per member): a normalizer reads dozens of paths
 * from objects of dozens of members, on every record of the intake. The first member of
 * that name is the one found, as with cJSON_GetObjectItemCaseSensitive (the strict parser
 * refuses duplicates anyway). */
const cJSON *
normlib_get(const cJSON *obj, const char *path)
{
    const cJSON *cur = obj;

    while (cur != NULL && *path != '\0') {
        size_t n = 0;
        const cJSON *c;

        while (path[n] != '\0' && path[n] != '.') {
            n++;
        }
        if ((cur->type & 0xff) != cJSON_Object) {
            return NULL;
        }
        for (c = cur->child; c != NULL; c = c->next) {
            const char *k = c->string;
            size_t i = 0;

            if (k == NULL) {
                continue;
            }
            /* A shorter key stops at its NUL, which no byte of the segment is. */
            while (i < n && k[i] == path[i]) {
                i++;
            }
            if (i == n && k[n] == '\0') {
                break;
            }
        }
        cur = c;
        path += n + (path[n] == '.');
    }
    return cur != NULL && (cur->type & 0xff) == cJSON_NULL ? NULL : cur;
}

const char *
normlib_str(const cJSON *obj, const char *path)
{
    const cJSON *it = normlib_get(obj, path);

    if (!cJSON_IsString(it) || it->valuestring[0] == '\0') {
        return NULL;
    }
    return it->valuestring;
}

int
normlib_num(const cJSON *obj, const char *path, double *out)
{
    const cJSON *it = normlib_get(obj, path);

    if (cJSON_IsNumber(it) && isfinite(it->valuedouble)) {
        *out = it->valuedouble;
        return 0;
    }
    if (cJSON_IsString(it) && it->valuestring[0] != '\0') {
        char *end;
        double d = strtod(it->valuestring, &end);

        if (*end == '\0' && isfinite(d) && !isspace((unsigned char)it->valuestring[0])) {
            *out = d;
            return 0;
        }
    }
    return -1;
}

int
normlib_bool(const cJSON *obj, const char *path)
{
    const cJSON *it = normlib_get(obj, path);

    if (cJSON_IsBool(it)) {
        return cJSON_IsTrue(it) ? 1 : 0;
    }
    if (cJSON_IsString(it)) {
        if (strcasecmp(it->valuestring, "true") == 0) {
            return 1;
        }
        if (strcasecmp(it->valuestring, "false") == 0) {
            return 0;
        }
    }
    return -1;
}

const cJSON *
normlib_obj(const cJSON *obj, const char *path)
{
    const cJSON *it = normlib_get(obj, path);

    return cJSON_IsObject(it) ? it : NULL;
}

const char *
normlib_text(const cJSON *obj, const char *path, char *out, size_t n)
{
    const cJSON *it = normlib_get(obj, path);

    out[0] = '\0';
    if (cJSON_IsString(it)) {
        snprintf(out, n, "%s", it->valuestring);
    } else if (cJSON_IsNumber(it) && isfinite(it->valuedouble)) {
        if (it->valuedouble == floor(it->valuedouble) && fabs(it->valuedouble) < 1e15) {
            snprintf(out, n, "%lld", (long long)it->valuedouble);
        } else {
            snprintf(out, n, "%g", it->valuedouble);
        }
    }
    return out;
}

int
normlib_is(const char *s, const char *want)
{
    return s != NULL && strcasecmp(s, want) == 0;
}

int
normlib_starts(const char *s, const char *prefix)
{
    return s != NULL && strncasecmp(s, prefix, strlen(prefix)) == 0;
}

int
normlib_in(const char *s, const char *const *list)
{
    for (; s != NULL && *list != NULL; list++) {
        if (strcasecmp(s, *list) == 0) {
            return 1;
        }
    }
    return 0;
}

/* An IP address in value (bare, "[v6]:port", "v4:port") in canonical text form into out;
 * 0, or -1 when it is none. */
static int
canonical_ip(const char *value, char *out, size_t n)
{
    char tmp[INET6_ADDRSTRLEN + 8];
    unsigned char bin[sizeof(struct in6_addr)];
    size_t len = strlen(value);
    const char *colon;

    if (len == 0 || len >= sizeof(tmp)) {
        return -1;
    }
    memcpy(tmp, value, len + 1);
    if (tmp[0] == '[') {
        char *close = strchr(tmp, ']');

        if (close == NULL) {
            return -1;
        }
        *close = '\0';
        memmove(tmp, tmp + 1, strlen(tmp + 1) + 1);
    } else if ((colon = strchr(tmp, ':')) != NULL && strchr(colon + 1, ':') == NULL) {
        tmp[colon - tmp] = '\0'; /* one colon: IPv4 with a port */
    }
    if (inet_pton(AF_INET, tmp, bin) == 1) {
        return inet_ntop(AF_INET, bin, out, (socklen_t)n) != NULL ? 0 : -1;
    }
    if (inet_pton(AF_INET6, tmp, bin) == 1) {
        return inet_ntop(AF_INET6, bin, out, (socklen_t)n) != NULL ? 0 : -1;
    }
    return -1;
}

void
normlib_obs(struct alert *a, const char *type, const char *value, const char *role)
{
    char ip[INET6_ADDRSTRLEN];
    char *lower = NULL;

    if (value == NULL || value[0] == '\0' || strlen(value) > NORMLIB_VALUE_MAX ||
        a->nobs >= NORMLIB_OBS_MAX) {
        return;
    }
    if (strcmp(type, "ip") == 0) {
        if (canonical_ip(value, ip, sizeof(ip)) == -1) {
            return;
        }
        value = ip;
    } else if (strcmp(type, "user") == 0 || strcmp(type, "email") == 0) {
        lower = xstrdup(value);
        for (char *p = lower; *p != '\0'; p++) {
            *p = (char)tolower((unsigned char)*p);
        }
        value = lower;
    }
    for (size_t i = 0; i < a->nobs; i++) {
        const struct observable *o = &a->obs[i];

        if (strcmp(o->type, type) == 0 && strcmp(o->value, value) == 0 &&
            ((o->role == NULL && role == NULL) ||
             (o->role != NULL && role != NULL && strcmp(o->role, role) == 0))) {
            free(lower);
            return;
        }
    }
    alert_add_observable(a, type, value, role);
    free(lower);
}

void
normlib_url(struct alert *a, const char *url, const char *role)
{
    const char *h, *end;
    char host[256], ip[INET6_ADDRSTRLEN];
    size_t n;

    if (url == NULL || url[0] == '\0' || strlen(url) > NORMLIB_VALUE_MAX) {
        return;
    }
    normlib_obs(a, "url", url, role);
    h = strstr(url, "://");
    h = h != NULL ? h + 3 : url;
    if (*h == '[') {
        return; /* an IPv6 literal: no domain */
    }
    end = h + strcspn(h, ":/?#@ ");
    if (*end == '@') { /* user info: the host follows */
        h = end + 1;
        end = h + strcspn(h, ":/?# ");
    }
    n = (size_t)(end - h);
    if (n == 0 || n >= sizeof(host)) {
        return;
    }
    memcpy(host, h, n);
    host[n] = '\0';
    if (canonical_ip(host, ip, sizeof(ip)) == 0 || strchr(host, '.') == NULL) {
        return;
    }
    for (char *p = host; *p != '\0'; p++) {
        *p = (char)tolower((unsigned char)*p);
    }
    normlib_obs(a, "domain", host, role);
}

void
normlib_account(struct alert *a, const char *domain, const char *name, const char *role)
{
    char *v;

    if (name == NULL) {
        return;
    }
    if (domain == NULL) {
        normlib_obs(a, "user", name, role);
        return;
    }
    v = xasprintf("%s\\%s", domain, name);
    normlib_obs(a, "user", v, role);
    free(v);
}

/* "M/D/YYYY h:mm:ss AM" (US form, UTC). */
static int
us_time(const char *s, int64_t *ms)
{
    int mo, d, y, h, mi, sec, used = 0;
    char ampm[3] = "";
    char iso[80];

    if (sscanf(s, "%d/%d/%d %d:%d:%d %2s%n", &mo, &d, &y, &h, &mi, &sec, ampm, &used) < 6) {
        return -1;
    }
    if (ampm[0] != '\0') {
        if (used == 0 || s[used] != '\0' || h < 1 || h > 12) {
            return -1;
        }
        if (strcasecmp(ampm, "PM") == 0) {
            h = h % 12 + 12;
        } else if (strcasecmp(ampm, "AM") == 0) {
            h = h % 12;
        } else {
            return -1;
        }
    }
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 60) {
        return -1;
    }
    snprintf(iso, sizeof(iso), "%04d-%02d-%02dT%02d:%02d:%02dZ", y, mo, d, h, mi, sec);
    return util_parse_time(iso, ms);
}

int
normlib_time(const char *s, int64_t *ms)
{
    char tmp[64];
    size_t n;

    if (s == NULL) {
        return -1;
    }
    if (util_parse_time(s, ms) == 0) {
        return 0;
    }
    n = strlen(s);
    if (n >= 19 && n < sizeof(tmp) - 1 && s[4] == '-' && strchr(s, 'Z') == NULL &&
        strchr(s + 19, '+') == NULL && strchr(s + 19, '-') == NULL) {
        memcpy(tmp, s, n); /* no zone: UTC */
        tmp[n] = 'Z';
        tmp[n + 1] = '\0';
        if (util_parse_time(tmp, ms) == 0) {
            return 0;
        }
    }
    return strchr(s, '/') != NULL ? us_time(s, ms) : -1;
}

int
normlib_set_time(struct alert *a, const cJSON *obj, const char *const *paths, char **errp)
{
    for (; *paths != NULL; paths++) {
        const cJSON *it = normlib_get(obj, *paths);

        if (it == NULL || (cJSON_IsString(it) && it->valuestring[0] == '\0')) {
            continue;
        }
        if (!cJSON_IsString(it) || normlib_time(it->valuestring, &a->time_ms) == -1) {
            return kg_err(errp, "%s: expected a timestamp (e.g. 2024-05-14T01:33:05Z)", *paths);
        }
        return 0;
    }
    return 0;
}

void
normlib_set_id(struct alert *a, const char *id)
{
    size_t n = strlen(id);

    free(a->source_id);
    if (n > NORMLIB_ID_MAX) {
        char hex[65];

        util_sha256_hex(id, n, hex);
        a->source_id = xstrdup(hex);
        return;
    }
    a->source_id = xstrdup(id);
}

void
normlib_set_id_parts(struct alert *a, const char *const *parts, size_t n)
{
    struct buf b;
    char hex[65];

    buf_init(&b, 0);
    for (size_t i = 0; i < n; i++) {
        (void)!buf_printf(&b, "%s%s", i ? "|" : "", parts[i] != NULL ? parts[i] : "");
    }
    util_sha256_hex(b.data != NULL ? b.data : "", b.len, hex);
    buf_free(&b);
    free(a->source_id);
    a->source_id = xstrdup(hex);
}

void
normlib_title(struct alert *a, const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    s = xvasprintf(fmt, ap);
    va_end(ap);
    free(a->title);
    /* Leave room for util_cut_text's " [... N bytes dropped]". */
    a->title = util_cut_text(s, NORMLIB_TITLE_MAX - 40);
    free(s);
}

void
normlib_category(struct alert *a, const char *s)
{
    free(a->category);
    a->category = s != NULL && s[0] != '\0' ? util_cut_text(s, NORMLIB_CATEGORY_MAX - 40) : NULL;
}

void
normlib_vendor_severity(struct alert *a, const char *s)
{
    free(a->vendor_severity);
    a->vendor_severity = s != NULL && s[0] != '\0' ? util_cut_text(s, 24) : NULL;
}

void
normlib_outcome(struct alert *a, const char *outcome)
{
    free(a->outcome);
    a->outcome = xstrdup(outcome);
}

int
normlib_sev_max(int a, int b)
{
    return a > b ? a : b;
}

int
normlib_sev_add(int sev, int delta)
{
    sev += delta;
    return sev < SEV_INFO ? SEV_INFO : sev > SEV_CRITICAL ? SEV_CRITICAL : sev;
}

int
normlib_ms_severity(const char *s)
{
    if (s == NULL) {
        return -1;
    }
    if (normlib_is(s, "none") || normlib_is(s, "hidden")) {
        return SEV_INFO;
    }
    if (normlib_is(s, "unknown") || normlib_is(s, "unknownFutureValue")) {
        return SEV_MEDIUM;
    }
    return severity_from_name(s);
}

int
normlib_log_class(int sev)
{
    return sev >= SEV_MEDIUM ? ALERT_CLASS_ALERT : ALERT_CLASS_EVENT;
}
