/* alert.c: the normalized alert model: level and outcome names, ownership, JSON form. */
#include "engine/alert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "engine/json.h"

static const char *const severity_names[] = { "informational", "low", "medium", "high",
                                              "critical" };

static const char *const outcome_names[] = { "unknown", "blocked", "attempted", "succeeded" };

static const char *const observable_types[] = { "user",    "ip",     "host", "device",
                                                "url",     "domain", "hash", "email",
                                                "process", "app",    "rule" };

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

int
severity_from_name(const char *name)
{
    if (name == NULL) {
        return -1;
    }
    for (size_t i = 0; i < NELEM(severity_names); i++) {
        if (strcasecmp(name, severity_names[i]) == 0) {
            return (int)i;
        }
    }
    if (strcasecmp(name, "info") == 0) {
        return SEV_INFO;
    }
    return -1;
}

const char *
severity_name(int sev)
{
    if (sev < SEV_INFO || sev > SEV_CRITICAL) {
        return "?";
    }
    return severity_names[sev];
}

/* Exact (case-sensitive) membership in a small list of names. */
static int
in_list(const char *s, const char *const *list, size_t n)
{
    if (s == NULL) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s, list[i]) == 0) {
            return 0;
        }
    }
    return -1;
}

const char *
alert_class_name(int cls)
{
    return cls == ALERT_CLASS_EVENT ? "event" : "alert";
}

int
alert_class_from_name(const char *s)
{
    if (s != NULL && strcmp(s, "alert") == 0) {
        return ALERT_CLASS_ALERT;
    }
    if (s != NULL && strcmp(s, "event") == 0) {
        return ALERT_CLASS_EVENT;
    }
    return -1;
}

int
outcome_valid(const char *s)
{
    return in_list(s, outcome_names, NELEM(outcome_names));
}

int
observable_type_valid(const char *s)
{
    return in_list(s, observable_types, NELEM(observable_types));
}

/* Free every string and the observables the alert owns and zero the struct. The struct
 * itself belongs to the caller; NULL is a no-op. */
void
alert_free(struct alert *a)
{
    if (a == NULL) {
        return;
    }
    free(a->source);
    free(a->source_id);
    free(a->title);
    free(a->category);
    free(a->vendor_severity);
    free(a->outcome);
    for (size_t i = 0; i < a->nobs; i++) {
        free(a->obs[i].type); /* the observable's one block (alert_add_observable) */
    }
    free(a->obs);
    free(a->raw);
    free(a->prep);
    memset(a, 0, sizeof(*a));
}

/* Append a copy of (type, value, role) to a's observables; role may be NULL. The
 * caller validates the type. Aborts on OOM like every xmalloc.
 *
 * The three strings share one block starting at type (alert_free frees only that), and
 * the array grows by doubling from 4 (its capacity follows from nobs): a firewall flow
 * has eight observables, and a busy feed makes tens of thousands of them a second. */
void
alert_add_observable(struct alert *a, const char *type, const char *value, const char *role)
{
    struct observable *o;
    size_t tl = strlen(type) + 1, vl = strlen(value) + 1, rl = role != NULL ? strlen(role) + 1 : 0;
    char *p;

    if (a->nobs == 0 || (a->nobs >= 4 && (a->nobs & (a->nobs - 1)) == 0)) {
        a->obs = xrealloc(a->obs, (a->nobs == 0 ? 4 : a->nobs * 2) * sizeof(*a->obs));
    }
    p = xmalloc(tl + vl + rl);
    memcpy(p, type, tl);
    memcpy(p + tl, value, vl);
    if (role != NULL) {
        memcpy(p + tl + vl, role, rl);
    }
    o = &a->obs[a->nobs++];
    o->type = p;
    o->value = p + tl;
    o->role = role != NULL ? p + tl + vl : NULL;
}

/* cJSON reports allocation failure with NULL; like xmalloc we treat OOM as fatal. */
static cJSON *
must(cJSON *item)
{
    if (item == NULL) {
        fprintf(stderr, "level=err event=oom where=alert_to_json\n");
        abort();
    }
    return item;
}

static void
add(cJSON *obj, const char *key, cJSON *item)
{
    if (!cJSON_AddItemToObject(obj, key, must(item))) {
        must(NULL);
    }
}

/* A string member, or null when s is NULL. */
static void
add_str(cJSON *obj, const char *key, const char *s)
{
    add(obj, key, s != NULL ? cJSON_CreateString(s) : cJSON_CreateNull());
}

static void
add_time(cJSON *obj, const char *key, int64_t ms)
{
    char t[32];

    util_fmt_time(ms, t);
    add(obj, key, cJSON_CreateString(t));
}

/* Serialize a to the JSON shape documented in alert.h, members always in that order;
 * absent optional strings are null. "raw" is embedded as JSON when it parses strictly,
 * else as a string (so a damaged stored row still serializes). The caller frees the
 * result with free(). */
char *
alert_to_json(const struct alert *a)
{
    cJSON *root = must(cJSON_CreateObject());
    cJSON *obs = must(cJSON_CreateArray());
    cJSON *raw = NULL;
    char *out;

    add(root, "id", cJSON_CreateNumber((double)a->id));
    add_str(root, "source", a->source);
    add_str(root, "source_id", a->source_id);
    add_time(root, "time", a->time_ms);
    add_time(root, "received", a->received_ms);
    add_str(root, "title", a->title);
    add_str(root, "category", a->category);
    add_str(root, "vendor_severity", a->vendor_severity);
    add_str(root, "severity", severity_name(a->severity));
    add_str(root, "outcome", a->outcome);
    add_str(root, "class", alert_class_name(a->cls));
    for (size_t i = 0; i < a->nobs; i++) {
        cJSON *o = must(cJSON_CreateObject());

        add_str(o, "type", a->obs[i].type);
        add_str(o, "value", a->obs[i].value);
        add_str(o, "role", a->obs[i].role);
        cJSON_AddItemToArray(obs, o);
    }
    add(root, "observables", obs);
    if (a->raw != NULL) {
        char *err = NULL;

        if (json_parse_strict(a->raw, strlen(a->raw), JSON_MAX_DEPTH, &raw, &err) == -1) {
            free(err);
            raw = cJSON_CreateString(a->raw);
        }
    } else {
        raw = cJSON_CreateNull();
    }
    add(root, "raw", raw);
    out = json_print(root);
    cJSON_Delete(root);
    return out;
}

/* One changed scalar field as [before, after] (NULL strings become null). */
static void
diff_str(cJSON *out, const char *name, const char *before, const char *after)
{
    cJSON *pair;

    if ((before == NULL && after == NULL) ||
        (before != NULL && after != NULL && strcmp(before, after) == 0)) {
        return;
    }
    pair = cJSON_AddArrayToObject(out, name);
    cJSON_AddItemToArray(pair, before ? cJSON_CreateString(before) : cJSON_CreateNull());
    cJSON_AddItemToArray(pair, after ? cJSON_CreateString(after) : cJSON_CreateNull());
}

#define OBS_S(s) ((s) != NULL ? (s) : "")

/* The observables of b that a does not have, as [{"type","value"}]. */
static void
diff_obs(cJSON *out, const struct alert *a, const struct alert *b)
{
    cJSON *added = NULL;

    for (size_t i = 0; i < b->nobs; i++) {
        int found = 0;

        for (size_t j = 0; j < a->nobs && !found; j++) {
            found = strcmp(OBS_S(a->obs[j].type), OBS_S(b->obs[i].type)) == 0 &&
                    strcmp(OBS_S(a->obs[j].value), OBS_S(b->obs[i].value)) == 0;
        }
        if (!found) {
            cJSON *o = cJSON_CreateObject();

            if (added == NULL) {
                added = cJSON_AddArrayToObject(out, "observables_added");
            }
            cJSON_AddStringToObject(o, "type", OBS_S(b->obs[i].type));
            cJSON_AddStringToObject(o, "value", OBS_S(b->obs[i].value));
            cJSON_AddItemToArray(added, o);
        }
    }
}

/* The top-level members of two raw records that differ: scalars as [before, after],
 * anything else as "changed", "added" or "removed". Records that are not JSON objects
 * are compared whole. */
static void
diff_raw(cJSON *out, const char *ra, const char *rb)
{
    cJSON *a = ra ? cJSON_Parse(ra) : NULL, *b = rb ? cJSON_Parse(rb) : NULL;
    cJSON *m = NULL, *it;

    if (!cJSON_IsObject(a) || !cJSON_IsObject(b)) {
        if ((ra == NULL) != (rb == NULL) || (ra != NULL && strcmp(ra, rb) != 0)) {
            cJSON_AddStringToObject(out, "raw", "changed");
        }
        goto out;
    }
    m = cJSON_CreateObject();
    cJSON_ArrayForEach(it, b)
    {
        const cJSON *old = cJSON_GetObjectItemCaseSensitive(a, it->string);

        if (old == NULL) {
            cJSON_AddStringToObject(m, it->string, "added");
        } else if (!cJSON_Compare(old, it, 1)) {
            if ((cJSON_IsString(old) || cJSON_IsNumber(old) || cJSON_IsBool(old) ||
                 cJSON_IsNull(old)) &&
                (cJSON_IsString(it) || cJSON_IsNumber(it) || cJSON_IsBool(it) ||
                 cJSON_IsNull(it))) {
                cJSON *pair = cJSON_AddArrayToObject(m, it->string);

                cJSON_AddItemToArray(pair, cJSON_Duplicate(old, 0));
                cJSON_AddItemToArray(pair, cJSON_Duplicate(it, 0));
            } else {
                cJSON_AddStringToObject(m, it->string, "changed");
            }
        }
    }
    cJSON_ArrayForEach(it, a)
    {
        if (cJSON_GetObjectItemCaseSensitive(b, it->string) == NULL) {
            cJSON_AddStringToObject(m, it->string, "removed");
        }
    }
    if (m->child != NULL) {
        cJSON_AddItemToObject(out, "raw", m);
        m = NULL;
    }
out:
    cJSON_Delete(m);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

int
alert_update_significant(const struct alert *before, const struct alert *after)
{
    int was = before->outcome != NULL && strcmp(before->outcome, "succeeded") == 0;
    int is = after->outcome != NULL && strcmp(after->outcome, "succeeded") == 0;

    return after->severity > before->severity || (is && !was);
}

char *
alert_diff(const struct alert *before, const struct alert *after)
{
    cJSON *out = cJSON_CreateObject();
    char *text;

    diff_str(out, "title", before->title, after->title);
    diff_str(out, "category", before->category, after->category);
    diff_str(out, "vendor_severity", before->vendor_severity, after->vendor_severity);
    diff_str(out, "severity", severity_name(before->severity), severity_name(after->severity));
    diff_str(out, "outcome", before->outcome, after->outcome);
    diff_obs(out, before, after);
    diff_raw(out, before->raw, after->raw);
    text = json_print(out);
    cJSON_Delete(out);
    return text;
}
