/* log.h: structured log lines on stderr, one event per line, key=value or JSON. */
#ifndef KAGARI_LOG_H
#define KAGARI_LOG_H

#include "engine/util.h"

enum log_level { KG_LOG_DEBUG = 0, KG_LOG_INFO, KG_LOG_WARN, KG_LOG_ERR };

/* The format starts with the event name, then key=value pairs:
 *     log_info("intake.accepted tenant=%s n=%d", id, n);
 * Each line gets time= and level= in front. Values with spaces should be quoted
 * by the caller with %s around log_quote(). */
void log_set_level(enum log_level level);
int log_level_from_name(const char *name); /* -1 when unknown */
void log_set_json(int on);                 /* emit one JSON object per line instead */
void log_msg(enum log_level level, const char *fmt, ...) KG_PRINTF(2, 3);
/* Return a quoted, escaped copy of s for a key=value field, in a small rotating static
 * buffer (valid for the next few calls only; about 500 bytes, longer values are cut).
 * '"' and '\\' are escaped, and so is anything a terminal could take for control (see
 * buf_escape_text): C0 controls, DEL, C1 controls, U+2028/U+2029 and invalid UTF-8. */
const char *log_quote(const char *s);

#define log_debug(...) log_msg(KG_LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(KG_LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(KG_LOG_WARN, __VA_ARGS__)
#define log_err(...) log_msg(KG_LOG_ERR, __VA_ARGS__)

#endif
