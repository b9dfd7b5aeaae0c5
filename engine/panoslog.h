/* panoslog.h: PAN-OS 10.x/11.x syslog records (the CSV after the syslog header) into the
 * alert model: TRAFFIC, THREAT (url, virus, spyware, vulnerability, wildfire, file, data,
 * flood, ...), SYSTEM, CONFIG, GLOBALPROTECT and AUTH by their documented field order,
 * other types kept with their common fields. The field mapping, the severity and outcome
 * rules and the source names are written down in docs/sources.md. */
#ifndef KAGARI_PANOSLOG_H
#define KAGARI_PANOSLOG_H

#include <stddef.h>
#include <stdint.h>

#include "engine/alert.h"

#define PANOSLOG_MAX_FIELDS 256 /* a record with more fields is refused */

/* Split one CSV record into at most max fields. Quoted fields ("a, ""b""") lose their
 * quotes and have doubled quotes undone; an unquoted field that starts with '{' runs to
 * its closing '}' (TRAFFIC's Link Switches list has bare commas inside). Decoded text
 * goes into scratch, which must hold len + 1 bytes; f[i] points into it,
 * NUL-terminated, with its length in flen[i]. -1 with *errp on an unterminated quote,
 * text after a closing quote, or more than max fields. */
int panoslog_csv(const char *s, size_t len, char *scratch, const char **f, size_t *flen, size_t max,
                 size_t *nf, char **errp) KG_WUR;

/* One record to normalize. */
struct panoslog_in {
    const char *csv; /* the record after the syslog header */
    size_t len;
    const char *msg; /* the whole message, kept as the alert's raw; NULL: the record */
    size_t msg_len;
    int64_t header_ms; /* the syslog header's time when it carries a zone, else 0 */
    int64_t received_ms;
    int utc_offset_min; /* the firewall's zone, for its own times (they carry none) */
};

/* Normalize in into *a (zeroed first; alert_free it after success). *is_alert is the
 * source's default: 1 for records that are detections (THREAT, a failed admin login,
 * an unauthorized or failed configuration change, a high SYSTEM event that is not
 * operational), 0 for records kept as events (TRAFFIC, GLOBALPROTECT, AUTH, the rest).
 * -1 with *errp for a record that is not PAN-OS CSV: a NUL byte, too few fields for its
 * type, an unknown type name, a malformed time. Bytes that are not UTF-8 become U+FFFD
 * in every field. */
int panoslog_normalize(const struct panoslog_in *in, struct alert *a, int *is_alert,
                       char **errp) KG_WUR;

#endif
