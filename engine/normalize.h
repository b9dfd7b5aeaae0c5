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

/* Normalize obj (which must be a JSON object) into *a. default_source is used when the
 * object has no "source" member (e.g. ?source= on the intake URL for Azure diagnostic
 * records); may be NULL. received_ms is stamped into a->received_ms (and a->time_ms when
 * the object has no time). On error returns -1 with a message naming the field, e.g.
 * "severity: expected one of informational, low, medium, high, critical". */
int normalize_alert(const cJSON *obj, const char *default_source, int64_t received_ms,
                    struct alert *a, char **errp) KG_WUR;

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
 *   observables array of {type, value, role?}
 *   raw         the whole object as received */

#endif
