/* util.h: allocation that aborts on OOM, capped buffers, time, hashing, parsing helpers. */
#ifndef KAGARI_UTIL_H
#define KAGARI_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define KG_AGAIN (-2) /* an operation has started and will complete later */

#define KG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define KG_WUR __attribute__((warn_unused_result))

/* C bookkeeping allocations: these abort the process on OOM (redis zmalloc). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) KG_PRINTF(1, 2);
char *xvasprintf(const char *fmt, va_list ap) KG_PRINTF(1, 0);

/* Set *errp (if errp is not NULL) to a newly allocated message; the caller frees it.
 * Always returns -1 so that "return kg_err(errp, ...)" reads naturally. */
int kg_err(char **errp, const char *fmt, ...) KG_PRINTF(2, 3);

/* A growable byte buffer with a hard cap (curl dynbuf). data is always NUL-terminated
 * when len > 0 or after any append. max == 0 means no cap. */
struct buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};
void buf_init(struct buf *b, size_t max);
int buf_append(struct buf *b, const void *p, size_t n) KG_WUR; /* -1 over max */
int buf_puts(struct buf *b, const char *s) KG_WUR;
int buf_printf(struct buf *b, const char *fmt, ...) KG_PRINTF(2, 3) KG_WUR;
/* Append s as a JSON string literal, quotes included. The literal is always valid UTF-8
 * JSON: each byte that is not part of valid UTF-8 becomes \ufffd, and control
 * characters, DEL, the C1 controls and U+2028/U+2029 are escaped as \u sequences. */
int buf_json_string(struct buf *b, const char *s, size_t n) KG_WUR;
/* Flags of buf_escape_text. */
#define UTIL_ESC_QUOTES 1  /* also escape '"' and '\\' (for a quoted key=value field) */
#define UTIL_ESC_KEEP_NL 2 /* keep LF and TAB as they are (for multi-line terminal text) */
/* Append s with everything a terminal or a log reader could take for control escaped:
 * C0 controls and DEL as \n, \r, \t or \xNN, the C1 controls (U+0080..U+009F) and
 * U+2028/U+2029 as \uNNNN, and each byte that is not part of valid UTF-8 as \xNN.
 * Other text, UTF-8 included, is copied. */
int buf_escape_text(struct buf *b, const char *s, size_t n, int flags) KG_WUR;
void buf_reset(struct buf *b);
/* Room for n more bytes without another allocation (ignores max: appends still check). */
void buf_reserve(struct buf *b, size_t n);
char *buf_take(struct buf *b); /* ownership of data moves to the caller; b is reset */
void buf_free(struct buf *b);

/* The length (1 to 4) of the valid UTF-8 character at s, which has n bytes left; 0 when
 * the bytes there are not valid UTF-8 (overlong forms and surrogates are not). */
size_t util_utf8_char(const char *s, size_t n);
/* A copy of s (n bytes) with each byte that is not part of valid UTF-8 replaced by
 * U+FFFD. Inside valid JSON such bytes can only be in strings, so the copy of a JSON
 * text stays JSON. The caller frees the result; *outlen (may be NULL) gets its length. */
char *util_utf8_clean(const char *s, size_t n, size_t *outlen);
/* A copy of s cut to at most max bytes on a UTF-8 character boundary, followed by
 * " [... N bytes dropped]" when anything was cut; a plain copy when s fits. The caller
 * frees the result. */
char *util_cut_text(const char *s, size_t max);

/* Time. util_now_ms: wall clock, ms since the epoch. util_mono_us: monotonic microseconds. */
int64_t util_now_ms(void);
int64_t util_mono_us(void);
/* The shift util_now_ms adds to the real wall clock (ms): set only by the test clock of a
 * test build (engine/testclock.h); 0 otherwise. */
void util_set_clock_shift(int64_t ms);
int64_t util_clock_shift_ms(void);
/* Format ms since epoch as RFC 3339 UTC with milliseconds ("2026-11-26T00:17:30.123Z").
 * out must hold 32 bytes. */
void util_fmt_time(int64_t ms, char *out);
/* Parse RFC 3339 ("2024-05-14T01:33:05Z", fractions, +09:00 offsets). 0 or -1. */
int util_parse_time(const char *s, int64_t *ms) KG_WUR;

/* Hex, hashes and randomness (OpenSSL). out of util_hex holds 2*n+1 bytes. */
void util_hex(const void *p, size_t n, char *out);
void util_sha256_hex(const void *p, size_t n, char out[65]);
int util_random(void *p, size_t n) KG_WUR;

/* "4MiB", "512k", "1048576" -> bytes; "15m", "2h", "1.5s", "500ms", "30" (seconds) ->
 * seconds. 0 or -1 on a malformed value. */
int util_parse_size(const char *s, size_t *out) KG_WUR;
int util_parse_duration(const char *s, double *secs) KG_WUR;

/* mkdir -p with the given mode. 0 or -1 (errno set). */
int util_mkdirs(const char *path, unsigned mode) KG_WUR;
/* Read a whole file (capped at max bytes). Returns NULL and sets *errp on failure. */
char *util_read_file(const char *path, size_t max, size_t *len, char **errp);
/* Write a file atomically (temp + fsync + rename) with the given mode. */
int util_write_file(const char *path, const void *p, size_t n, unsigned mode, char **errp) KG_WUR;

/* Parse a listen address, "host:port", "[v6]:port" or ":port" (all IPv4), with a
 * numeric host, into *ss and *sslen. -1 with *errp naming what is wrong. */
int util_parse_listen(const char *addr, struct sockaddr_storage *ss, socklen_t *sslen,
                      char **errp) KG_WUR;

/* The ports this process listens on (its listeners add and remove them): a connector
 * refuses to call them on loopback, so a run cannot feed the engine's own intake. */
void util_own_port_add(int port);
void util_own_port_del(int port);
int util_own_port(int port);

/* Remove a folder and everything in it, not following symlinks (errors ignored). */
void util_rm_tree(const char *dir);

#endif
