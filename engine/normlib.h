/* normlib.h: what the source-specific normalizers (engine/norm_*.c) share: reading a
 * record by member path without caring whether a value is missing, null or of another
 * type, observables that are checked and capped, vendor times, ids and titles. */
#ifndef KAGARI_NORMLIB_H
#define KAGARI_NORMLIB_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/alert.h"

/* Caps shared with the generic normalizer (bytes). */
#define NORMLIB_TITLE_MAX 1024
#define NORMLIB_CATEGORY_MAX 256
#define NORMLIB_VALUE_MAX 4096
#define NORMLIB_ID_MAX 256
#define NORMLIB_OBS_MAX 256

/* The member at a dotted path ("properties.status.errorCode"), case-sensitive; NULL when
 * any step is missing, null or not an object. A key that holds a dot itself
 * ("@odata.type", claim URIs) needs json_get. */
const cJSON *normlib_get(const cJSON *obj, const char *path);
/* The string at path when it is a non-empty string, else NULL (borrowed from obj). */
const char *normlib_str(const cJSON *obj, const char *path);
/* The number at path, also from a numeric string ("4", "50126"); 0 and *out set, or -1. */
int normlib_num(const cJSON *obj, const char *path, double *out) KG_WUR;
/* 1 for true (or "true"/"True"), 0 for false, -1 when absent or anything else. */
int normlib_bool(const cJSON *obj, const char *path);
/* The object at path, or NULL when absent or not an object. */
const cJSON *normlib_obj(const cJSON *obj, const char *path);
/* The text of a string or number at path, written to out (size n): "" when neither. */
const char *normlib_text(const cJSON *obj, const char *path, char *out, size_t n);

/* Case-insensitive equality and prefix tests that accept NULL (false). */
int normlib_is(const char *s, const char *want);
int normlib_starts(const char *s, const char *prefix);
/* Is s one of the NULL-terminated list, case-insensitively? */
int normlib_in(const char *s, const char *const *list);

/* Add an observable when value is a usable string: non-empty, at most NORMLIB_VALUE_MAX
 * bytes (longer ones stay only in raw) and, for type "ip", an IPv4 or IPv6 address
 * (an IPv6 address is written in its canonical lower-case form, a port or brackets are
 * removed: "[2001:db8::1]:443"). "user" and "email" values are lower-cased. The same
 * (type, value, role) twice is added once; past NORMLIB_OBS_MAX entries nothing more is
 * added. */
void normlib_obs(struct alert *a, const char *type, const char *value, const char *role);

/* Add a URL observable and, when it has a host name (not an address), that host as a
 * "domain" observable with the same role. A URL without a scheme ("fqdn/path", as
 * firewalls log them) is taken as http. */
void normlib_url(struct alert *a, const char *url, const char *role);
/* "domain\name" (or name alone) as a user observable, when no UPN is known. */
void normlib_account(struct alert *a, const char *domain, const char *name, const char *role);

/* A vendor time: RFC 3339 (any fraction, Z or offset), the same without a zone (taken as
 * UTC), or the US form seen in some exports, "8/22/2022 6:07:16 PM" (UTC). 0 or -1. */
int normlib_time(const char *s, int64_t *ms) KG_WUR;
/* Set a->time_ms from the first parseable of the strings at the given paths (NULL-ended
 * list). A value that is present but not a time is an error naming its path; when none is
 * present the time is left 0 (the caller's received time). */
int normlib_set_time(struct alert *a, const cJSON *obj, const char *const *paths,
                     char **errp) KG_WUR;

/* a->source_id = id when it fits NORMLIB_ID_MAX, else its sha256. */
void normlib_set_id(struct alert *a, const char *id);
/* a->source_id = sha256 of the parts joined with '|' (NULL parts count as ""). */
void normlib_set_id_parts(struct alert *a, const char *const *parts, size_t n);

/* Set a->title (or category) from a printf format, cut on a UTF-8 boundary to the cap. */
void normlib_title(struct alert *a, const char *fmt, ...) KG_PRINTF(2, 3);
void normlib_category(struct alert *a, const char *s);
void normlib_vendor_severity(struct alert *a, const char *s);
void normlib_outcome(struct alert *a, const char *outcome);

/* Severity arithmetic on enum severity, clamped to Informational..Critical. */
int normlib_sev_max(int a, int b);
int normlib_sev_add(int sev, int delta);
/* Microsoft level words (Defender, Identity Protection): informational/low/medium/high,
 * "none"/"hidden" Informational, "unknown" Medium (pending review); -1 when none. */
int normlib_ms_severity(const char *s);

/* The class of a log record: an event, promoted to an alert when its severity is at
 * least Medium (the default rule for every high-volume source, docs/sources.md). */
int normlib_log_class(int sev);

#endif
