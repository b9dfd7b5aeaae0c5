/* panoslog.c: PAN-OS syslog CSV records into alerts: a CSV state machine, then one
 * mapping per log type by field position (PAN-OS 10.2/11.1 order; later releases only
 * append fields, so extra trailing fields are ignored and older, shorter records are
 * accepted down to the last field a mapping needs). */
#include "engine/panoslog.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PANOSLOG_VALUE_MAX 4096 /* bytes of one field kept in an observable or title */

int
panoslog_csv(const char *s, size_t len, char *scratch, const char **f, size_t *flen, size_t max,
             size_t *nf, char **errp)
{
    size_t i = 0, o = 0, n = 0;

    for (;;) {
        size_t start = o;

        if (n == max) {
            return kg_err(errp, "more than %zu fields", max);
        }
        if (i < len && s[i] == '"') {
            i++;
            for (;;) {
                if (i >= len) {
                    return kg_err(errp, "field %zu: unterminated quoted field", n + 1);
                }
                if (s[i] == '"') {
                    if (i + 1 < len && s[i + 1] == '"') {
                        scratch[o++] = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                scratch[o++] = s[i++];
            }
            if (i < len && s[i] != ',') {
                return kg_err(errp, "field %zu: text after a closing quote", n + 1);
            }
        } else if (i < len && s[i] == '{') {
            const char *close = memchr(s + i, '}', len - i);
            const char *comma = memchr(s + i, ',', len - i);

            if (close != NULL) { /* a brace list: bare commas inside belong to it */
                size_t end = (size_t)(close - s) + 1;

                while (end < len && s[end] != ',') {
                    end++;
                }
                memcpy(scratch + o, s + i, end - i);
                o += end - i;
                i = end;
            } else {
                size_t end = comma != NULL ? (size_t)(comma - s) : len;

                memcpy(scratch + o, s + i, end - i);
                o += end - i;
                i = end;
            }
        } else {
            const char *comma = memchr(s + i, ',', len - i);
            size_t end = comma != NULL ? (size_t)(comma - s) : len;

            memcpy(scratch + o, s + i, end - i);
            o += end - i;
            i = end;
        }
        f[n] = scratch + start;
        flen[n] = o - start;
        scratch[o++] = '\0';
        n++;
        if (i >= len) {
            break;
        }
        i++;            /* the comma */
        if (i == len) { /* a trailing comma: one more, empty field */
            if (n == max) {
                return kg_err(errp, "more than %zu fields", max);
            }
            f[n] = scratch + o;
            flen[n] = 0;
            scratch[o++] = '\0';
            n++;
            break;
        }
    }
    *nf = n;
    return 0;
}

/* ---- field access ---- */

struct rec {
    const char **f;
    size_t *flen;
    size_t n;
};

/* Field i (0-based), "" when the record is shorter. */
static const char *
fld(const struct rec *r, size_t i)
{
    return i < r->n ? r->f[i] : "";
}

static int
empty(const char *v)
{
    return v[0] == '\0';
}

static int
is_ip(const char *v)
{
    unsigned char b[16];

    if (strchr(v, ':') != NULL) {
        return inet_pton(AF_INET6, v, b) == 1;
    }
    return inet_pton(AF_INET, v, b) == 1;
}

/* An address worth naming: valid, and not the "none" values PAN-OS writes. */
static int
useful_ip(const char *v)
{
    return !empty(v) && strcmp(v, "0.0.0.0") != 0 && strcmp(v, "::") != 0 && is_ip(v);
}

static void
obs(struct alert *a, const char *type, const char *value, const char *role)
{
    if (value == NULL || empty(value) || strlen(value) > PANOSLOG_VALUE_MAX) {
        return;
    }
    for (size_t i = 0; i < a->nobs; i++) { /* one entry per (type, value, role) */
        const struct observable *o = &a->obs[i];

        if (strcmp(o->type, type) == 0 && strcmp(o->value, value) == 0 &&
            ((o->role == NULL && role == NULL) ||
             (o->role != NULL && role != NULL && strcmp(o->role, role) == 0))) {
            return;
        }
    }
    alert_add_observable(a, type, value, role);
}

static void
obs_ip(struct alert *a, const char *v, const char *role)
{
    if (useful_ip(v)) {
        obs(a, "ip", v, role);
    }
}

/* ---- time ---- */

/* "YYYY/MM/DD hh:mm:ss" in the firewall's zone (offset minutes east of UTC). */
static int
panos_time(const char *v, int offset_min, int64_t *ms)
{
    char iso[40];
    int ah = abs(offset_min) / 60, am = abs(offset_min) % 60;

    if (strlen(v) != 19 || v[4] != '/' || v[7] != '/' || v[10] != ' ') {
        return -1;
    }
    snprintf(iso, sizeof(iso), "%.4s-%.2s-%.2sT%.8s%c%02d:%02d", v, v + 5, v + 8, v + 11,
             offset_min < 0 ? '-' : '+', ah, am);
    return util_parse_time(iso, ms);
}

/* The record's time: the high-resolution timestamp (it has a zone), else the syslog
 * header's when it has one, else the generated time in the configured zone, else the
 * receive time field, else when it arrived. */
static int64_t
rec_time(const struct rec *r, size_t hires, const struct panoslog_in *in)
{
    int64_t ms;

    if (hires > 0 && util_parse_time(fld(r, hires), &ms) == 0) {
        return ms;
    }
    if (in->header_ms > 0) {
        return in->header_ms;
    }
    if (panos_time(fld(r, 6), in->utc_offset_min, &ms) == 0 ||
        panos_time(fld(r, 1), in->utc_offset_min, &ms) == 0) {
        return ms;
    }
    return in->received_ms;
}

/* ---- severity and outcome ---- */

/* Actions that stopped the traffic (THREAT and TRAFFIC), PAN-OS spellings with hyphens or
 * spaces. */
static int
action_blocked(const char *act)
{
    static const char *const allowed[] = { "alert", "allow", "continue", "override" };

    if (empty(act)) {
        return 0;
    }
    for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
        if (strcasecmp(act, allowed[i]) == 0) {
            return 0;
        }
    }
    return 1;
}

static int
level_or(const char *v, int dflt)
{
    int l = severity_from_name(v);

    return l < 0 ? dflt : l;
}

static int
max_level(int a, int b)
{
    return a > b ? a : b;
}

static int
min_level(int a, int b)
{
    return a < b ? a : b;
}

/* ---- per type ---- */

/* "Name(1234)" -> "Name (1234)"; the URL pseudo-threat "(9999)" -> NULL. */
static char *
threat_title(const char *v)
{
    const char *open = strrchr(v, '(');

    if (empty(v) || v[0] == '(') {
        return NULL;
    }
    if (open != NULL && open > v && open[-1] != ' ') {
        return xasprintf("%.*s (%s", (int)(open - v), v, open + 1);
    }
    return xstrdup(v);
}

/* The host part of a URL written without scheme ("www.example.jp/api"), when it is a
 * name (an address is already an ip observable). */
static void
obs_url_domain(struct alert *a, const char *url)
{
    const char *p = url, *end;
    char host[256];

    if (strstr(p, "://") != NULL) {
        p = strstr(p, "://") + 3;
    }
    end = p + strcspn(p, "/:?#");
    if (end == p || (size_t)(end - p) >= sizeof(host)) {
        return;
    }
    snprintf(host, sizeof(host), "%.*s", (int)(end - p), p);
    if (!is_ip(host) && strchr(host, '.') != NULL) {
        obs(a, "domain", host, NULL);
    }
}

/* Observables common to TRAFFIC and THREAT (same positions up to field 31). */
static void
session_obs(struct alert *a, const struct rec *r, size_t src_host, size_t dst_host)
{
    obs_ip(a, fld(r, 7), "src");
    obs_ip(a, fld(r, 8), "dst");
    obs_ip(a, fld(r, 9), "nat_src");
    obs_ip(a, fld(r, 10), "nat_dst");
    obs(a, "user", fld(r, 12), "src");
    obs(a, "user", fld(r, 13), "dst");
    obs(a, "host", fld(r, src_host), "src");
    obs(a, "host", fld(r, dst_host), "dst");
    obs(a, "app", fld(r, 14), NULL);
    obs(a, "rule", fld(r, 11), NULL);
}

static int
map_traffic(struct alert *a, const struct rec *r, const struct panoslog_in *in, int *is_alert)
{
    const char *act = fld(r, 30);

    a->time_ms = rec_time(r, 102, in);
    a->category = xstrdup(fld(r, 4));
    a->outcome = xstrdup(empty(act) ? "unknown" : action_blocked(act) ? "blocked" : "succeeded");
    a->severity = SEV_INFO;
    a->title = xasprintf("%s %s %s -> %s:%s %s", fld(r, 14), act, fld(r, 7), fld(r, 8), fld(r, 25),
                         fld(r, 29));
    session_obs(a, r, 82, 90);
    *is_alert = 0;
    return 0;
}

/* Subtypes whose unblocked record means the thing reached its target (a file delivered,
 * a C2 channel used, a page reached); for the others (an exploit attempt, a scan, a
 * flood) success is not known. */
static int
threat_reached(const char *subtype)
{
    static const char *const reached[] = { "spyware", "virus", "wildfire",       "url",
                                           "file",    "data",  "wildfire-virus", "ml-virus" };

    for (size_t i = 0; i < sizeof(reached) / sizeof(reached[0]); i++) {
        if (strcmp(subtype, reached[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

static int
url_category_bad(const char *cat)
{
    return strstr(cat, "malware") != NULL || strstr(cat, "phishing") != NULL ||
           strstr(cat, "command-and-control") != NULL;
}

static int
map_threat(struct alert *a, const struct rec *r, const struct panoslog_in *in, int *is_alert)
{
    const char *sub = fld(r, 4), *act = fld(r, 30), *misc = fld(r, 31), *cat = fld(r, 33);
    int vendor = level_or(fld(r, 34), SEV_INFO), level = vendor, blocked = action_blocked(act);
    char *name = threat_title(fld(r, 32));

    a->time_ms = rec_time(r, 107, in);
    a->category = xstrdup(sub);
    a->vendor_severity = xstrdup(fld(r, 34));
    if (strcasecmp(act, "sinkhole") == 0) { /* blocked, but the asking host is infected */
        a->outcome = xstrdup("blocked");
        level = max_level(vendor, SEV_HIGH);
    } else if (blocked) {
        a->outcome = xstrdup("blocked");
        level = min_level(vendor, SEV_LOW);
        if (strcmp(sub, "url") == 0 && url_category_bad(cat)) {
            level = SEV_LOW; /* a lure or malware site, stopped */
        }
    } else {
        a->outcome = xstrdup(empty(act)            ? "unknown"
                             : threat_reached(sub) ? "succeeded"
                                                   : "attempted");
        if (strcmp(sub, "url") == 0 && url_category_bad(cat)) {
            level = max_level(level, SEV_HIGH);
        } else if (strcmp(sub, "wildfire") == 0) {
            level = max_level(level, strcmp(cat, "malicious") == 0 || strcmp(cat, "malware") == 0
                                         ? SEV_HIGH
                                     : strcmp(cat, "phishing") == 0 ? SEV_MEDIUM
                                     : strcmp(cat, "grayware") == 0 ? SEV_LOW
                                                                    : SEV_INFO);
        }
    }
    a->severity = level;
    if (strcmp(sub, "url") == 0) {
        a->title = xasprintf("URL %s (%s): %s", cat, act, misc);
    } else if (strcmp(sub, "wildfire") == 0) {
        a->title = xasprintf("WildFire %s: %s", cat, misc);
    } else if (name != NULL) {
        a->title = xasprintf("%s: %s", sub, name);
    } else {
        a->title = xasprintf("%s %s", sub, act);
    }
    free(name);
    session_obs(a, r, 86, 94);
    /* URL/Filename: a URL for url and spyware rows, a file name for the file ones (a
     * value with '/' is taken as a URL in every subtype). */
    if (strcmp(sub, "url") == 0 || strchr(misc, '/') != NULL) {
        obs(a, "url", misc, NULL);
        obs_url_domain(a, misc);
    }
    if (strlen(fld(r, 43)) == 64) {
        obs(a, "hash", fld(r, 43), "sha256");
    }
    obs_ip(a, fld(r, 48), "xff");
    obs(a, "email", fld(r, 50), "sender");
    obs(a, "email", fld(r, 52), "recipient");
    *is_alert = 1;
    return 0;
}

/* The subtypes of SYSTEM logs that describe the firewall's own operation. */
static int
system_operational(const char *sub)
{
    static const char *const ops[] = { "ha",   "hw",       "routing", "dhcp",   "ntpd",
                                       "port", "pppoe",    "satd",    "ras",    "pbf",
                                       "nat",  "dnsproxy", "sslmgr",  "crypto", "vpn" };

    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (strcmp(sub, ops[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* "... user 'admin' ..." and "... From: 203.0.113.45." in a SYSTEM description. */
static void
system_desc_obs(struct alert *a, const char *d)
{
    const char *u = strstr(d, "user '"), *from = strstr(d, "From: ");

    if (u != NULL) {
        const char *end = strchr(u + 6, '\'');

        if (end != NULL && end - (u + 6) < 256) {
            char *user = xstrndup(u + 6, (size_t)(end - (u + 6)));

            obs(a, "user", user, "src");
            free(user);
        }
    }
    if (from != NULL) {
        char ip[64];
        size_t n = strspn(from + 6, "0123456789abcdefABCDEF.:");

        if (n > 0 && n < sizeof(ip)) {
            snprintf(ip, sizeof(ip), "%.*s", (int)n, from + 6);
            if (ip[n - 1] == '.') {
                ip[n - 1] = '\0';
            }
            obs_ip(a, ip, "src");
        }
    }
}

static int
map_system(struct alert *a, const struct rec *r, const struct panoslog_in *in, int *is_alert)
{
    const char *sub = fld(r, 4), *ev = fld(r, 8), *desc = fld(r, 14);
    int vendor = level_or(fld(r, 13), SEV_INFO), ops = system_operational(sub);
    int fail = strstr(ev, "fail") != NULL, ok = strstr(ev, "success") != NULL;

    a->time_ms = rec_time(r, 25, in);
    a->category = xstrdup(sub);
    a->vendor_severity = xstrdup(fld(r, 13));
    a->outcome = xstrdup(fail ? "blocked" : ok ? "succeeded" : "unknown");
    a->severity = ops                                  ? SEV_INFO
                  : fail && strstr(ev, "auth") != NULL ? max_level(vendor, SEV_MEDIUM)
                                                       : vendor;
    a->title = xasprintf("%s %s: %s", sub, ev, desc);
    system_desc_obs(a, desc);
    *is_alert = !ops && ((fail && strstr(ev, "auth") != NULL) || vendor >= SEV_HIGH);
    return 0;
}

static int
map_config(struct alert *a, const struct rec *r, const struct panoslog_in *in, int *is_alert)
{
    const char *host = fld(r, 7), *cmd = fld(r, 9), *admin = fld(r, 10), *res = fld(r, 12);
    const char *path = fld(r, 13);
    int denied = strcasecmp(res, "Unauthorized") == 0 || strcasecmp(res, "Failed") == 0;

    while (*path == ' ') {
        path++;
    }
    a->time_ms = rec_time(r, 25, in);
    a->category = xstrdup(cmd);
    a->outcome = xstrdup(denied                              ? "blocked"
                         : strcasecmp(res, "Succeeded") == 0 ? "succeeded"
                         : strcasecmp(res, "Submitted") == 0 ? "attempted"
                                                             : "unknown");
    a->vendor_severity = xstrdup(res);
    a->severity = denied ? SEV_MEDIUM : SEV_INFO;
    a->title =
        xasprintf("config %s by %s (%s)%s%s", cmd, admin, res, empty(path) ? "" : ": ", path);
    if (is_ip(host)) {
        obs_ip(a, host, "src");
    } else {
        obs(a, "host", host, "src");
    }
    obs(a, "user", admin, "src");
    *is_alert = denied;
    return 0;
}

static int
map_globalprotect(struct alert *a, const struct rec *r, const struct panoslog_in *in, int *is_alert)
{
    const char *ev = fld(r, 8), *status = fld(r, 28), *user = fld(r, 12);

    a->time_ms = rec_time(r, 36, in);
    a->category = xstrdup(ev);
    a->outcome = xstrdup(strcasecmp(status, "success") == 0   ? "succeeded"
                         : strcasecmp(status, "failure") == 0 ? "blocked"
                                                              : "unknown");
    a->severity = strcasecmp(status, "failure") == 0 ? SEV_LOW : SEV_INFO;
    a->title = xasprintf("GlobalProtect %s %s for %s%s%s", ev, status, user,
                         empty(fld(r, 25)) ? "" : ": ", fld(r, 25));
    obs(a, "user", user, "src");
    obs(a, "host", fld(r, 14), "src");
    obs_ip(a, fld(r, 15), "src");
    obs_ip(a, fld(r, 16), "src");
    obs_ip(a, fld(r, 17), "private");
    obs_ip(a, fld(r, 18), "private");
    *is_alert = 0;
    return 0;
}

static int
map_auth(struct alert *a, const struct rec *r, const struct panoslog_in *in, int *is_alert)
{
    const char *ev = fld(r, 20), *sub = fld(r, 4);
    int fail = strcasestr(ev, "fail") != NULL || strcasestr(sub, "fail") != NULL;
    int ok = strcasestr(ev, "success") != NULL || strcasestr(sub, "success") != NULL;

    a->time_ms = rec_time(r, 33, in);
    a->category = xstrdup(empty(ev) ? sub : ev);
    a->outcome = xstrdup(fail ? "blocked" : ok ? "succeeded" : "unknown");
    a->severity = fail ? SEV_LOW : SEV_INFO;
    a->title = xasprintf("authentication %s for %s%s%s", empty(ev) ? sub : ev, fld(r, 9),
                         empty(fld(r, 18)) ? "" : ": ", fld(r, 18));
    obs_ip(a, fld(r, 8), "src");
    obs(a, "user", fld(r, 9), "src");
    obs(a, "host", fld(r, 40), "src");
    obs(a, "rule", fld(r, 12), NULL);
    *is_alert = 0;
    return 0;
}

static int
map_other(struct alert *a, const struct rec *r, const struct panoslog_in *in, int *is_alert)
{
    a->time_ms = rec_time(r, 0, in);
    a->category = xstrdup(fld(r, 4));
    a->outcome = xstrdup("unknown");
    a->severity = SEV_INFO;
    a->title = xasprintf("%s %s", fld(r, 3), fld(r, 4));
    *is_alert = 0;
    return 0;
}

/* The types we map, the source name each gets, the fewest fields a record of it must
 * have (through its sequence number) and where that number is. */
static const struct type {
    const char *name;
    const char *source;
    size_t min_fields;
    size_t seqno;
    int (*map)(struct alert *, const struct rec *, const struct panoslog_in *, int *);
} types[] = {
    { "TRAFFIC", "panos.traffic", 40, 39, map_traffic },
    { "THREAT", "panos.threat", 37, 36, map_threat },
    { "SYSTEM", "panos.system", 16, 15, map_system },
    { "CONFIG", "panos.config", 15, 14, map_config },
    { "GLOBALPROTECT", "panos.globalprotect", 35, 34, map_globalprotect },
    { "AUTH", "panos.auth", 23, 22, map_auth },
    { "AUTHENTICATION", "panos.auth", 23, 22, map_auth },
};

/* A log type name: upper-case letters, digits, '-' and '_', 1 to 32 of them. */
static int
type_name_valid(const char *v)
{
    size_t n = strlen(v);

    if (n == 0 || n > 32) {
        return 0;
    }
    return strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == n;
}

int
panoslog_normalize(const struct panoslog_in *in, struct alert *a, int *is_alert, char **errp)
{
    const char *fv[PANOSLOG_MAX_FIELDS];
    size_t fl[PANOSLOG_MAX_FIELDS], nf = 0;
    const struct type *ty = NULL;
    char *clean = NULL, *scratch = NULL, src[64];
    size_t clen;
    struct rec r;
    struct buf raw;
    const char *msg = in->msg != NULL ? in->msg : in->csv;
    size_t msg_len = in->msg != NULL ? in->msg_len : in->len;
    int rc = -1;

    memset(a, 0, sizeof(*a));
    *is_alert = 0;
    if (memchr(in->csv, '\0', in->len) != NULL) {
        return kg_err(errp, "a NUL byte in the record");
    }
    {
        size_t i = 0;

        while (i < in->len && (unsigned char)in->csv[i] < 0x80) {
            i++;
        }
        if (i < in->len) { /* not all ASCII: bytes that are not UTF-8 become U+FFFD */
            clean = util_utf8_clean(in->csv, in->len, &clen);
        } else {
            clen = in->len;
        }
    }
    scratch = xmalloc(clen + 1);
    if (panoslog_csv(clean != NULL ? clean : in->csv, clen, scratch, fv, fl, PANOSLOG_MAX_FIELDS,
                     &nf, errp) == -1) {
        goto out;
    }
    r.f = fv;
    r.flen = fl;
    r.n = nf;
    if (nf < 7) {
        kg_err(errp, "not a PAN-OS record: %zu fields (at least 7)", nf);
        goto out;
    }
    if (!type_name_valid(fv[3])) {
        kg_err(errp, "field 4 (type): expected a PAN-OS log type such as TRAFFIC");
        goto out;
    }
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(fv[3], types[i].name) == 0) {
            ty = &types[i];
            break;
        }
    }
    if (ty != NULL && nf < ty->min_fields) {
        kg_err(errp, "%s record with %zu fields (at least %zu)", ty->name, nf, ty->min_fields);
        goto out;
    }
    if (ty == NULL) {
        char lower[40];
        size_t i;

        for (i = 0; fv[3][i] != '\0' && i + 1 < sizeof(lower); i++) {
            lower[i] = (char)(fv[3][i] >= 'A' && fv[3][i] <= 'Z' ? fv[3][i] + 32 : fv[3][i]);
        }
        lower[i] = '\0';
        snprintf(src, sizeof(src), "panos.%s", lower);
    } else {
        snprintf(src, sizeof(src), "%s", ty->source);
    }
    a->source = xstrdup(src);
    a->received_ms = in->received_ms;
    if (ty != NULL && !empty(fv[ty->seqno]) && !empty(fv[2])) {
        a->source_id = xasprintf("%s/%s/%s", fv[2], fv[3], fv[ty->seqno]);
    } else {
        char hex[65];

        util_sha256_hex(in->csv, in->len, hex);
        a->source_id = xstrdup(hex);
    }
    if ((ty != NULL ? ty->map : map_other)(a, &r, in, is_alert) == -1) {
        goto out;
    }
    if (a->title != NULL && strlen(a->title) > 1024) {
        char *cut = util_cut_text(a->title, 1000);

        free(a->title);
        a->title = cut;
    }
    if (a->category != NULL && strlen(a->category) > 256) {
        char *cut = util_cut_text(a->category, 200);

        free(a->category);
        a->category = cut;
    }
    buf_init(&raw, 0);
    buf_reserve(&raw, msg_len + msg_len / 8 + 32); /* one allocation for most lines */
    (void)!buf_puts(&raw, "{\"message\":");
    (void)!buf_json_string(&raw, msg, msg_len);
    (void)!buf_puts(&raw, "}");
    a->raw = buf_take(&raw);
    rc = 0;
out:
    free(clean);
    free(scratch);
    if (rc == -1) {
        alert_free(a);
    }
    return rc;
}
