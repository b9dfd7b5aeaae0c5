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
        free(a->obs[i].type);
        free(a->obs[i].value);
        free(a->obs[i].role);
    }
    free(a->obs);
    free(a->raw);
    memset(a, 0, sizeof(*a));
}

/* Append a copy of (type, value, role) to a's observables; role may be NULL. The
 * caller validates the type. Aborts on OOM like every xmalloc. */
void
alert_add_observable(struct alert *a, const char *type, const char *value, const char *role)
{
    struct observable *o;

    a->obs = xrealloc(a->obs, (a->nobs + 1) * sizeof(*a->obs));
    o = &a->obs[a->nobs++];
    o->type = xstrdup(type);
    o->value = xstrdup(value);
    o->role = role != NULL ? xstrdup(role) : NULL;
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
