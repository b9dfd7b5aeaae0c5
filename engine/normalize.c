/* normalize.c: JSON alert object -> struct alert: the source-specific normalizers
 * (tried first, in registration order) and the generic rules of normalize.h. */
#include "engine/normalize.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/json.h"
#include "engine/log.h"

/* Caps on the strings an alert may carry (bytes). Everything is stored and shown in
 * the portal, so an oversized field is refused rather than truncated. */
#define NORM_SOURCE_MAX 64
#define NORM_SOURCE_ID_MAX 256
#define NORM_TITLE_MAX 1024
#define NORM_CATEGORY_MAX 256
#define NORM_VENDOR_SEV_MAX 64
#define NORM_OBS_VALUE_MAX 4096
#define NORM_OBS_ROLE_MAX 64
#define NORM_OBS_MAX 256

/* 2^53: the first integer at which a JSON number may already have been rounded by the
 * parser (9007199254740993 reads as 9007199254740992), so source_id must stay below. */
#define NORM_EXACT_INT 9007199254740992.0

/* Epoch seconds accepted for "time": 1970-01-01 to 9999-12-31T23:59:59Z. Millisecond
 * timestamps sent by mistake fall outside and are refused. */
#define NORM_EPOCH_MAX 253402300799.0

#define NORM_MAX_NORMALIZERS 32

struct normalizer {
    const char *name;
    normalize_fn fn;
};

static struct normalizer normalizers[NORM_MAX_NORMALIZERS];
static size_t nnormalizers;
static const struct norm_family *families[NORM_MAX_NORMALIZERS];
static size_t nfamilies;

/* Register a source-specific normalizer. Called at startup from the single loop thread;
 * name must outlive the process (a string literal). Registering more than
 * NORM_MAX_NORMALIZERS is a programming error and aborts. */
void
normalize_register(const char *name, normalize_fn fn)
{
    if (nnormalizers == NORM_MAX_NORMALIZERS) {
        log_err("normalize.register_full name=%s", name);
        abort();
    }
    normalizers[nnormalizers].name = name;
    normalizers[nnormalizers].fn = fn;
    nnormalizers++;
}

/* Add a family of source-specific normalizers (once; order is the order of detection).
 * Called at start-up from the loop thread; f must outlive the process. */
void
normalize_add_family(const struct norm_family *f)
{
    for (size_t i = 0; i < nfamilies; i++) {
        if (families[i] == f) {
            return;
        }
    }
    if (nfamilies == NORM_MAX_NORMALIZERS) {
        log_err("normalize.families_full name=%s", f->name);
        abort();
    }
    families[nfamilies++] = f;
}

const struct norm_family *const *
normalize_families(size_t *n)
{
    *n = nfamilies;
    return families;
}

/* The first family whose detect knows obj's shape: its source name, *fp the family. */
static const char *
detect(const cJSON *obj, const struct norm_family **fp)
{
    for (size_t i = 0; i < nfamilies; i++) {
        const char *src = families[i]->detect(obj);

        if (src != NULL) {
            *fp = families[i];
            return src;
        }
    }
    return NULL;
}

const char *
normalize_detect(const cJSON *obj)
{
    const struct norm_family *f;

    return cJSON_IsObject(obj) ? detect(obj, &f) : NULL;
}

/* Is s a valid source name: [a-z0-9._-]{1,64}? */
static int
source_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > NORM_SOURCE_MAX) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-')) {
            return 0;
        }
    }
    return 1;
}

/* The member key of obj, treating JSON null as absent (many sources send null for
 * fields they do not fill). */
static const cJSON *
member(const cJSON *obj, const char *key)
{
    const cJSON *it = json_get(obj, key);

    return cJSON_IsNull(it) ? NULL : it;
}

/* Read an optional string member of at most max bytes into *out (NULL when absent).
 * field names it in messages. Empty strings count as absent when empty_is_absent. */
static int
opt_string(const cJSON *obj, const char *key, const char *field, size_t max, int empty_is_absent,
           char **out, char **errp)
{
    const cJSON *it = member(obj, key);
    size_t n;

    *out = NULL;
    if (it == NULL) {
        return 0;
    }
    if (!cJSON_IsString(it)) {
        return kg_err(errp, "%s: expected a string", field);
    }
    n = strlen(it->valuestring);
    if (n > max) {
        return kg_err(errp, "%s: longer than %zu bytes", field, max);
    }
    if (n == 0 && empty_is_absent) {
        return 0;
    }
    *out = xstrdup(it->valuestring);
    return 0;
}

/* Integral double with |d| < 2^53 as decimal text, else NULL. */
static char *
exact_integer_text(double d)
{
    if (!isfinite(d) || d != floor(d) || fabs(d) >= NORM_EXACT_INT) {
        return NULL;
    }
    return xasprintf("%" PRId64, (int64_t)d);
}

/* Why no family took obj, for the "source: required" message: what its shape shows. */
static void
unknown_shape(const cJSON *obj, char *out, size_t n)
{
    const char *cat = json_get_string(obj, "category");
    const char *type = json_get_string(obj, "@odata.type");

    if (nfamilies == 0) {
        out[0] = '\0';
    } else if (cat != NULL) {
        snprintf(out, n, "; no normalizer knows records of category \"%.64s\"", cat);
    } else if (type != NULL) {
        snprintf(out, n, "; no normalizer knows objects of type \"%.64s\"", type);
    } else {
        snprintf(out, n,
                 "; not a known record shape (no category, @odata.type or other member "
                 "that names a source)");
    }
}

static int
norm_source(const cJSON *obj, const char *default_source, struct alert *a, char **errp)
{
    const cJSON *it = member(obj, "source");
    const char *s;

    if (it != NULL) {
        if (!cJSON_IsString(it)) {
            return kg_err(errp, "source: expected a string");
        }
        s = it->valuestring;
    } else if (default_source != NULL) {
        s = default_source;
    } else {
        char why[160];

        unknown_shape(obj, why, sizeof(why));
        return kg_err(errp, "source: required (or give a default source)%s", why);
    }
    if (!source_valid(s)) {
        char why[160];

        unknown_shape(obj, why, sizeof(why));
        return kg_err(errp, "source: expected 1 to %d characters from [a-z0-9._-]%s",
                      NORM_SOURCE_MAX, it != NULL ? why : "");
    }
    a->source = xstrdup(s);
    return 0;
}

/* Members only our generic form has (docs/http-api.md): a record that names a valid
 * source and carries one of them was written for us, whatever its other members. */
static const char *const generic_only[] = { "source_id", "observables", "vendor_severity",
                                            "outcome",   "class",       NULL };

/* Whether obj, which may look like a vendor's record, is in our generic form: it has a
 * member "source" naming a valid source ([a-z0-9._-]) and a member only the generic form
 * has. A vendor's record whose own "source" collides with ours (a Graph riskDetection's
 * "IdentityProtection", a "source" added by a forwarder) is not: the family that knows
 * its shape normalizes it. */
static int
generic_form(const cJSON *obj)
{
    const cJSON *src = member(obj, "source");

    if (src == NULL || !cJSON_IsString(src) || !source_valid(src->valuestring)) {
        return 0;
    }
    for (size_t i = 0; generic_only[i] != NULL; i++) {
        if (member(obj, generic_only[i]) != NULL) {
            return 1;
        }
    }
    return 0;
}

/* source_id: a string kept verbatim, or an integer that a double holds exactly. The
 * default is the sha256 of the object's JSON text, so a resent alert dedups. */
static int
norm_source_id(const cJSON *obj, struct alert *a, char **errp)
{
    const cJSON *it = member(obj, "source_id");

    if (it == NULL) {
        char *canon = json_print(obj); /* not raw: a resent alert dedups however spaced */
        char hex[65];

        util_sha256_hex(canon, strlen(canon), hex);
        free(canon);
        a->source_id = xstrdup(hex);
        return 0;
    }
    if (cJSON_IsNumber(it)) {
        a->source_id = exact_integer_text(it->valuedouble);
        if (a->source_id == NULL) {
            return kg_err(errp, "source_id: use a string for numbers beyond 2^53 "
                                "(or that are not integers)");
        }
        return 0;
    }
    if (!cJSON_IsString(it)) {
        return kg_err(errp, "source_id: expected a string or an integer");
    }
    if (it->valuestring[0] == '\0' || strlen(it->valuestring) > NORM_SOURCE_ID_MAX) {
        return kg_err(errp, "source_id: must be 1 to %d bytes", NORM_SOURCE_ID_MAX);
    }
    a->source_id = xstrdup(it->valuestring);
    return 0;
}

static int
norm_time(const cJSON *obj, int64_t received_ms, struct alert *a, char **errp)
{
    const cJSON *it = member(obj, "time");

    if (it == NULL) {
        a->time_ms = received_ms;
        return 0;
    }
    if (cJSON_IsString(it)) {
        if (util_parse_time(it->valuestring, &a->time_ms) == -1) {
            return kg_err(errp, "time: expected an RFC 3339 timestamp "
                                "(e.g. 2024-05-14T01:33:05Z)");
        }
        return 0;
    }
    if (cJSON_IsNumber(it)) {
        double d = it->valuedouble;

        if (!isfinite(d) || d < 0 || d > NORM_EPOCH_MAX) {
            return kg_err(errp, "time: epoch seconds out of range");
        }
        a->time_ms = (int64_t)llround(d * 1000.0);
        return 0;
    }
    return kg_err(errp, "time: expected an RFC 3339 string or epoch seconds");
}

/* vendor_severity: text kept as sent; numbers converted to their JSON text ("3"). */
static int
norm_vendor_severity(const cJSON *obj, struct alert *a, char **errp)
{
    const cJSON *it = member(obj, "vendor_severity");

    if (it == NULL) {
        return 0;
    }
    if (cJSON_IsNumber(it)) {
        a->vendor_severity = json_print(it);
        return 0;
    }
    return opt_string(obj, "vendor_severity", "vendor_severity", NORM_VENDOR_SEV_MAX, 1,
                      &a->vendor_severity, errp);
}

static int
norm_severity(const cJSON *obj, struct alert *a, char **errp)
{
    const cJSON *it = member(obj, "severity");

    if (it == NULL) {
        int s = severity_from_name(a->vendor_severity);

        a->severity = s >= 0 ? s : SEV_INFO;
        return 0;
    }
    if (cJSON_IsString(it)) {
        int s = severity_from_name(it->valuestring);

        if (s < 0) {
            return kg_err(errp, "severity: expected one of informational, low, medium, high, "
                                "critical");
        }
        a->severity = s;
        return 0;
    }
    if (cJSON_IsNumber(it)) {
        double d = it->valuedouble;

        if (d != floor(d) || d < SEV_INFO || d > SEV_CRITICAL) {
            return kg_err(errp, "severity: expected an integer 0 to 4 or a level name");
        }
        a->severity = (int)d;
        return 0;
    }
    return kg_err(errp, "severity: expected a level name or an integer 0 to 4");
}

static int
norm_outcome(const cJSON *obj, struct alert *a, char **errp)
{
    const cJSON *it = member(obj, "outcome");

    if (it == NULL) {
        a->outcome = xstrdup("unknown");
        return 0;
    }
    if (!cJSON_IsString(it) || outcome_valid(it->valuestring) == -1) {
        return kg_err(errp, "outcome: expected one of unknown, blocked, attempted, succeeded");
    }
    a->outcome = xstrdup(it->valuestring);
    return 0;
}

static int
norm_class(const cJSON *obj, struct alert *a, char **errp)
{
    const cJSON *it = member(obj, "class");

    if (it == NULL) {
        a->cls = ALERT_CLASS_ALERT;
        return 0;
    }
    if (!cJSON_IsString(it) || alert_class_from_name(it->valuestring) == -1) {
        return kg_err(errp, "class: expected alert or event");
    }
    a->cls = alert_class_from_name(it->valuestring);
    return 0;
}

/* observables: an array of at most NORM_OBS_MAX objects {type, value, role?}. Members
 * other than those three are ignored (they stay in raw). */
static int
norm_observables(const cJSON *obj, struct alert *a, char **errp)
{
    const cJSON *arr = member(obj, "observables");
    const cJSON *it;
    int i = 0;

    if (arr == NULL) {
        return 0;
    }
    if (!cJSON_IsArray(arr)) {
        return kg_err(errp, "observables: expected an array");
    }
    if (cJSON_GetArraySize(arr) > NORM_OBS_MAX) {
        return kg_err(errp, "observables: at most %d entries", NORM_OBS_MAX);
    }
    cJSON_ArrayForEach(it, arr)
    {
        const cJSON *type = json_get(it, "type");
        const cJSON *value = json_get(it, "value");
        const cJSON *role = member(it, "role");
        size_t n;

        if (!cJSON_IsObject(it)) {
            return kg_err(errp, "observables[%d]: expected an object", i);
        }
        if (!cJSON_IsString(type) || observable_type_valid(type->valuestring) == -1) {
            return kg_err(errp,
                          "observables[%d].type: expected one of user, ip, host, device, "
                          "url, domain, hash, email, process",
                          i);
        }
        if (!cJSON_IsString(value)) {
            return kg_err(errp, "observables[%d].value: expected a string", i);
        }
        n = strlen(value->valuestring);
        if (n == 0 || n > NORM_OBS_VALUE_MAX) {
            return kg_err(errp, "observables[%d].value: must be 1 to %d bytes", i,
                          NORM_OBS_VALUE_MAX);
        }
        if (role != NULL && !cJSON_IsString(role)) {
            return kg_err(errp, "observables[%d].role: expected a string", i);
        }
        if (role != NULL && strlen(role->valuestring) > NORM_OBS_ROLE_MAX) {
            return kg_err(errp, "observables[%d].role: longer than %d bytes", i, NORM_OBS_ROLE_MAX);
        }
        alert_add_observable(a, type->valuestring, value->valuestring,
                             role != NULL && role->valuestring[0] != '\0' ? role->valuestring
                                                                          : NULL);
        i++;
    }
    return 0;
}

/* The generic rules (normalize.h). Fields are checked in a fixed order and the first
 * problem is reported. *a is filled as we go; the caller frees it on error. */
static int
normalize_generic(const cJSON *obj, const char *default_source, int64_t received_ms,
                  struct alert *a, char **errp)
{
    if (norm_source(obj, default_source, a, errp) == -1 || norm_source_id(obj, a, errp) == -1 ||
        norm_time(obj, received_ms, a, errp) == -1) {
        return -1;
    }
    if (opt_string(obj, "title", "title", NORM_TITLE_MAX, 1, &a->title, errp) == -1) {
        return -1;
    }
    if (a->title == NULL) {
        a->title = xstrdup(a->source);
    }
    if (opt_string(obj, "category", "category", NORM_CATEGORY_MAX, 1, &a->category, errp) == -1 ||
        norm_vendor_severity(obj, a, errp) == -1 || norm_severity(obj, a, errp) == -1 ||
        norm_outcome(obj, a, errp) == -1 || norm_class(obj, a, errp) == -1 ||
        norm_observables(obj, a, errp) == -1) {
        return -1;
    }
    return 0;
}

/* Fill what a source-specific normalizer left unset with the generic defaults, so every
 * alert leaving here has source, source_id, title, outcome, raw and both times. */
static int
fill_defaults(const cJSON *obj, const char *name, int64_t received_ms, struct alert *a, char **errp)
{
    if (a->source == NULL || !source_valid(a->source)) {
        return kg_err(errp, "normalizer %s: produced no valid source", name);
    }
    if (a->raw == NULL) {
        a->raw = json_print(obj);
    }
    if (a->source_id == NULL) {
        char hex[65];

        util_sha256_hex(a->raw, strlen(a->raw), hex);
        a->source_id = xstrdup(hex);
    }
    if (a->time_ms == 0) {
        a->time_ms = received_ms;
    }
    if (a->title == NULL) {
        a->title = xstrdup(a->source);
    }
    if (a->outcome == NULL) {
        a->outcome = xstrdup("unknown");
    }
    if (a->severity < SEV_INFO || a->severity > SEV_CRITICAL) {
        return kg_err(errp, "normalizer %s: severity out of range", name);
    }
    return 0;
}

/* a->raw: the record's own bytes when known, else obj printed. */
static void
set_raw(struct alert *a, const cJSON *obj, const char *raw, size_t rawlen)
{
    a->raw = raw != NULL ? xstrndup(raw, rawlen) : json_print(obj);
}

/* Normalize obj into *a (which must own nothing: it is overwritten): the normalizers of
 * normalize_register in registration order, then (for a record without "source") the
 * family that knows its shape, then the generic rules. On success a owns its strings
 * (alert_free); on error *a is left zeroed and *errp names the field. */
static int
normalize_any(const cJSON *obj, const char *raw, size_t rawlen, const char *default_source,
              int64_t received_ms, struct alert *a, const char **srcp, int vendor, char **errp)
{
    const struct norm_family *f = NULL;
    const char *src = NULL;
    const char *dummy;

    if (srcp == NULL) {
        srcp = &dummy;
    }
    *srcp = default_source != NULL && source_valid(default_source) ? default_source : "unknown";
    memset(a, 0, sizeof(*a));
    if (!cJSON_IsObject(obj)) {
        return kg_err(errp, "alert: expected a JSON object");
    }
    for (size_t i = 0; i < nnormalizers; i++) {
        int rc = normalizers[i].fn(obj, default_source, a, errp);

        if (rc == 0) {
            alert_free(a); /* a declining normalizer should leave *a empty; make sure */
            continue;
        }
        a->received_ms = received_ms;
        if (rc == 1 && a->raw == NULL) {
            set_raw(a, obj, raw, rawlen);
        }
        if (rc != 1 || fill_defaults(obj, normalizers[i].name, received_ms, a, errp) == -1) {
            if (errp != NULL && *errp == NULL) {
                kg_err(errp, "normalizer %s: failed", normalizers[i].name);
            }
            alert_free(a);
            return -1;
        }
        *srcp = normalizers[i].name;
        return 0;
    }
    if ((vendor || !generic_form(obj)) && (src = detect(obj, &f)) != NULL) {
        *srcp = src;
        a->source = xstrdup(src);
        if (f->normalize(obj, src, a, errp) == -1) {
            alert_free(a);
            return -1;
        }
        a->received_ms = received_ms;
        set_raw(a, obj, raw, rawlen);
        if (fill_defaults(obj, f->name, received_ms, a, errp) == -1) {
            alert_free(a);
            return -1;
        }
        return 0;
    }
    a->received_ms = received_ms;
    set_raw(a, obj, raw, rawlen);
    if (normalize_generic(obj, default_source, received_ms, a, errp) == -1) {
        alert_free(a);
        return -1;
    }
    *srcp = a->source;
    return 0;
}

int
normalize_record(const cJSON *obj, const char *raw, size_t rawlen, const char *default_source,
                 int64_t received_ms, struct alert *a, const char **srcp, char **errp)
{
    return normalize_any(obj, raw, rawlen, default_source, received_ms, a, srcp, 0, errp);
}

int
normalize_vendor_record(const cJSON *obj, const char *raw, size_t rawlen,
                        const char *default_source, int64_t received_ms, struct alert *a,
                        const char **srcp, char **errp)
{
    return normalize_any(obj, raw, rawlen, default_source, received_ms, a, srcp, 1, errp);
}

int
normalize_alert(const cJSON *obj, const char *default_source, int64_t received_ms, struct alert *a,
                char **errp)
{
    return normalize_record(obj, NULL, 0, default_source, received_ms, a, NULL, errp);
}
