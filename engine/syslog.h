/* syslog.h: the syslog intake source: UDP, TCP and TLS listeners (RFC 5426, 6587, 5425),
 * RFC 3164 and RFC 5424 headers, the tenant chosen by listener or by sender address,
 * PAN-OS records normalized (engine/panoslog.h) into alerts or events by the tenant's
 * rule. The framing and header parsers are pure functions, for the fuzz target. */
#ifndef KAGARI_SYSLOG_H
#define KAGARI_SYSLOG_H

#include <stddef.h>
#include <stdint.h>

#include "engine/plugin.h"

#define SYSLOG_MAX_MESSAGE_DEFAULT (64u << 10)

/* ---- framing (RFC 6587) ---- */

enum syslog_framing { SYSLOG_FRAMING_UNKNOWN = 0, SYSLOG_FRAMING_OCTET, SYSLOG_FRAMING_LF };

/* A TCP connection's framing state: chosen by its first byte (a digit: octet counting,
 * "LEN SP MSG"; anything else: one message per LF-terminated line). */
struct syslog_framer {
    enum syslog_framing mode;
    size_t max;     /* bytes of one message */
    int discarding; /* an over-long line is being skipped up to its LF */
};

enum syslog_frame_rc {
    SYSLOG_FRAME_MORE = 0, /* need more bytes */
    SYSLOG_FRAME_OK,       /* *msg, *mlen: one message */
    SYSLOG_FRAME_SKIPPED,  /* bytes dropped (an over-long line); framing goes on */
    SYSLOG_FRAME_FATAL     /* the stream cannot be framed any more: close it */
};

/* Take the next frame from p[0..n): *used bytes are consumed (also for SKIPPED and
 * FATAL); on OK the message (without its LF or CR LF) is p[*off .. *off + *mlen). *why
 * says what was wrong for SKIPPED and FATAL. */
enum syslog_frame_rc syslog_frame(struct syslog_framer *fr, const char *p, size_t n, size_t *used,
                                  size_t *off, size_t *mlen, const char **why);

/* ---- headers ---- */

struct syslog_msg {
    int pri;          /* 0..191, or -1 without a PRI */
    int rfc5424;      /* the header was RFC 5424's */
    int64_t time_ms;  /* the header's time when it carries a zone (RFC 5424), else 0 */
    const char *host; /* HOSTNAME, or NULL */
    size_t host_len;
    const char *body; /* MSG (a UTF-8 BOM removed) */
    size_t body_len;
};

/* Parse an RFC 5424 or RFC 3164 header; a message without a PRI is all body. -1 with
 * *why for a header that starts but is malformed (a bad PRI, a truncated RFC 5424
 * header, unterminated structured data). */
int syslog_parse(const char *m, size_t n, struct syslog_msg *out, const char **why);

extern const struct source syslog_source;

#endif
