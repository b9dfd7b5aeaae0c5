/* alert.h: the normalized alert model (docs/playbooks.md "The alert"). */
#ifndef KAGARI_ALERT_H
#define KAGARI_ALERT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/util.h"

enum severity { SEV_INFO = 0, SEV_LOW, SEV_MEDIUM, SEV_HIGH, SEV_CRITICAL };

/* What a record is: a detection that may trigger playbooks (alert), or one line of a
 * high-volume log kept for queries and correlation (event). The normalizer decides a
 * default per source (docs/sources.md). */
enum alert_class { ALERT_CLASS_ALERT = 0, ALERT_CLASS_EVENT = 1 };
const char *alert_class_name(int cls);    /* "alert" or "event" */
int alert_class_from_name(const char *s); /* the class, or -1 */

/* "informational", "low", "medium", "high", "critical" (also "info"), case-insensitive.
 * Returns the level or -1. */
int severity_from_name(const char *name);
const char *severity_name(int sev); /* "informational" .. "critical"; "?" when out of range */

/* unknown|blocked|attempted|succeeded; returns 0 when valid, -1 otherwise. */
int outcome_valid(const char *s);
/* user|ip|host|device|url|domain|hash|email|process|app|rule; 0 when valid, -1 otherwise. */
int observable_type_valid(const char *s);

/* Made only by alert_add_observable: the three strings are one block starting at type. */
struct observable {
    char *type;
    char *value;
    char *role; /* may be NULL */
};

/* One alert. Every string is owned by the alert; alert_free() frees them and
 * leaves the struct zeroed (the struct itself is the caller's). */
struct alert {
    int64_t id;      /* tenant-local id, set by the store; 0 before insertion */
    char *source;    /* e.g. "entra.signin" */
    char *source_id; /* dedup key within (tenant, source) */
    int64_t time_ms; /* when it happened */
    int64_t received_ms;
    char *title;
    char *category;        /* may be NULL */
    char *vendor_severity; /* may be NULL */
    int severity;          /* enum severity */
    char *outcome;         /* never NULL after normalization: "unknown" by default */
    int cls;               /* enum alert_class */
    struct observable *obs;
    size_t nobs;
    char *raw; /* the original JSON text of this alert, NUL-terminated */
    /* The event store's row, prepared off the loop (store_event_prepare) or NULL: one
     * block, freed with the alert. Valid only while the fields above are unchanged. */
    void *prep;
};

void alert_free(struct alert *a);
void alert_add_observable(struct alert *a, const char *type, const char *value, const char *role);

/* Serialize to the stored/exchanged JSON form:
 * {"id":..,"source":..,"source_id":..,"time":"RFC3339","received":"RFC3339","title":..,
 *  "category":..,"vendor_severity":..,"severity":"high","outcome":..,"class":"alert",
 *  "observables":[{"type":..,"value":..,"role":..}],"raw":{...}}
 * Returns a newly allocated string. */
char *alert_to_json(const struct alert *a);

/* A stored alert its source sent again with other content (a Graph alert whose status,
 * severity or evidence changed). alert_diff: what changed from before to after, as JSON
 * text (malloc'd): the model's fields as [before, after] ("severity", "outcome",
 * "title", "category", "vendor_severity"), "observables_added", and under "raw" the
 * record's top-level members that differ (scalars as [before, after], others "changed",
 * "added" or "removed"). alert_update_significant: 1 when the update should start the
 * playbooks again: its level rose, or its outcome became "succeeded" (docs/sources.md,
 * "Updates of stored alerts"). */
char *alert_diff(const struct alert *before, const struct alert *after);
int alert_update_significant(const struct alert *before, const struct alert *after);

#endif
