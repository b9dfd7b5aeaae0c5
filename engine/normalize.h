/* normalize.h: turns one JSON alert object into struct alert. The generic normalizer
 * is built in; source-specific ones register through normalize_register(). */
#ifndef KAGARI_NORMALIZE_H
#define KAGARI_NORMALIZE_H

#include <cjson/cJSON.h>

#include "engine/alert.h"

/* A source-specific normalizer. It returns 1 when it handled the object (filling *a, or
 * failing with -1 and *errp), 0 to let the next one (finally the generic one) try. */
typedef int (*normalize_fn)(const cJSON *obj, const char *default_source, struct alert *a,
                            char **errp);
void normalize_register(const char *name, normalize_fn fn);

/* A family of source-specific normalizers (engine/norm_*.c): one vendor's record shapes.
 * detect looks at the shape only (category, @odata.type, tell-tale members) and returns
 * the source name obj is (one of sources, a string literal) or NULL; normalize fills *a
 * for that source and fails with -1 and *errp when the record cannot be understood. A
 * family leaves raw, received_ms and, where the record has none, source_id and time to
 * the caller; it sets a->source. */
struct norm_family {
    const char *name;           /* "entra" */
    const char *const *sources; /* NULL-terminated: every source name it produces */
    const char *(*detect)(const cJSON *obj);
    int (*normalize)(const cJSON *obj, const char *source, struct alert *a, char **errp);
};
/* Add a family (registry.c does, at start; tests add their own). Families are asked in
 * the order added, after the normalize_register ones; the same family twice is added
 * once. */
void normalize_add_family(const struct norm_family *f);
/* The families added, in order; *n gets their count. */
const struct norm_family *const *normalize_families(size_t *n);
/* The source a record of this shape is, or NULL when no family knows the shape. */
const char *normalize_detect(const cJSON *obj);

/* Normalize obj (which must be a JSON object) into *a. default_source is used when the
 * object has no "source" member (e.g. ?source= on the intake URL for Azure diagnostic
 * records); may be NULL. received_ms is stamped into a->received_ms (and a->time_ms when
 * the object has no time). On error returns -1 with a message naming the field, e.g.
 * "severity: expected one of informational, low, medium, high, critical". */
int normalize_alert(const cJSON *obj, const char *default_source, int64_t received_ms,
                    struct alert *a, char **errp) KG_WUR;

/* normalize_alert for a record whose exact text is known: raw (rawlen bytes, the record as
 * it was received, e.g. one element of a {"records":[...]} envelope) becomes a->raw byte
 * for byte; raw NULL means "print obj". A record in our generic form (a member "source"
 * naming a valid source, and a member only that form has: source_id, observables,
 * vendor_severity, outcome or class) follows the generic rules; otherwise a family that
 * recognizes its shape normalizes it (a vendor's own "source" member, e.g. a Graph
 * riskDetection's "IdentityProtection", does not stop it); otherwise the generic rules
 * with default_source. *srcp (may be NULL) gets the source the record
 * was taken for, also on failure (for per-source counts): a string that lives as long as
 * *a or the families, or "unknown". */
int normalize_record(const cJSON *obj, const char *raw, size_t rawlen, const char *default_source,
                     int64_t received_ms, struct alert *a, const char **srcp, char **errp) KG_WUR;

/* normalize_record for a record pulled from a vendor's API (a poller), which is that
 * vendor's object and never our generic form: the family that knows its shape is asked
 * first even when the object has a member "source" of its own (a Graph riskDetection's
 * "source" is the detecting service, e.g. "IdentityProtection"). */
int normalize_vendor_record(const cJSON *obj, const char *raw, size_t rawlen,
                            const char *default_source, int64_t received_ms, struct alert *a,
                            const char **srcp, char **errp) KG_WUR;

/* The generic rules, documented in docs/http-api.md:
 *   source      string [a-z0-9._-]{1,64}; required unless default_source is given
 *   source_id   string (1..256 bytes) or integer below 2^53; default: sha256 of the
 *               object's canonical JSON
 *   time        RFC 3339 string or epoch seconds (number); default: received
 *   title       string (<= 1024 bytes); default: the source
 *   category    string
 *   severity    level name (case-insensitive) or integer 0..4; default from
 *               vendor_severity when that is a level name, else "informational"
 *   vendor_severity string (numbers are converted to their text)
 *   outcome     unknown|blocked|attempted|succeeded; default unknown
 *   class       alert|event; default alert
 *   observables array of {type, value, role?}
 *   raw         the whole object as received */

#endif
