/* log.c: one structured line per event on stderr. */
#include "engine/log.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static enum log_level min_level = KG_LOG_INFO;
static int json_lines;

static const char *const level_names[] = { "debug", "info", "warn", "err" };

void
log_set_level(enum log_level level)
{
    min_level = level;
}

int
log_level_from_name(const char *name)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            return i;
        }
    }
    if (strcasecmp(name, "error") == 0) {
        return KG_LOG_ERR;
    }
    if (strcasecmp(name, "warning") == 0) {
        return KG_LOG_WARN;
    }
    return -1;
}

void
log_set_json(int on)
{
    json_lines = on;
}

/* Each input character is escaped on its own and kept only while the whole escape fits,
 * so a long value is cut between characters, never inside an escape or a UTF-8
 * sequence. */
const char *
log_quote(const char *s)
{
    static char ring[4][512];
    static int next;
    char *out = ring[next++ & 3];
    size_t o = 0, n = strlen(s), i = 0;
    struct buf one;

    buf_init(&one, 0);
    out[o++] = '"';
    while (i < n) {
        size_t l = util_utf8_char(s + i, n - i);

        l = l > 0 ? l : 1;
        buf_reset(&one);
        (void)!buf_escape_text(&one, s + i, l, UTIL_ESC_QUOTES);
        if (o + one.len > sizeof(ring[0]) - 2) {
            break;
        }
        memcpy(out + o, one.data, one.len);
        o += one.len;
        i += l;
    }
    buf_free(&one);
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

/* Undo one escape of buf_escape_text at p (just after its backslash) into v. Returns
 * the number of bytes used after the backslash. */
static size_t
unescape_one(struct buf *v, const char *p)
{
    char hex[5] = { 0 };
    unsigned long cp;

    switch (*p) {
    case 'n':
        (void)!buf_append(v, "\n", 1);
        return 1;
    case 'r':
        (void)!buf_append(v, "\r", 1);
        return 1;
    case 't':
        (void)!buf_append(v, "\t", 1);
        return 1;
    case 'x':
        if (isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
            char b;

            memcpy(hex, p + 1, 2);
            b = (char)strtoul(hex, NULL, 16);
            (void)!buf_append(v, &b, 1);
            return 3;
        }
        break;
    case 'u':
        if (strspn(p + 1, "0123456789abcdefABCDEF") >= 4) {
            char u[3];

            memcpy(hex, p + 1, 4);
            cp = strtoul(hex, NULL, 16);
            if (cp < 0x800) { /* C1 controls: two bytes */
                u[0] = (char)(0xc0 | (cp >> 6));
                u[1] = (char)(0x80 | (cp & 0x3f));
                (void)!buf_append(v, u, 2);
            } else {
                u[0] = (char)(0xe0 | (cp >> 12));
                u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                u[2] = (char)(0x80 | (cp & 0x3f));
                (void)!buf_append(v, u, 3);
            }
            return 5;
        }
        break;
    default:
        break;
    }
    (void)!buf_append(v, p, 1);
    return 1;
}

/* Turn "event k=v k2=\"a b\"" into a JSON object. Values stay strings. */
static void
emit_json(struct buf *b, const char *ts, enum log_level level, const char *line)
{
    const char *p = line;
    const char *sp = strchr(p, ' ');
    size_t evlen = sp ? (size_t)(sp - p) : strlen(p);

    (void)!buf_printf(b, "{\"time\":\"%s\",\"level\":\"%s\",\"event\":", ts, level_names[level]);
    (void)!buf_json_string(b, p, evlen);
    p += evlen;
    while (*p != '\0') {
        const char *k, *eq;
        struct buf v;

        while (*p == ' ') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        k = p;
        eq = strchr(p, '=');
        if (eq == NULL) {
            break;
        }
        (void)!buf_puts(b, ",");
        (void)!buf_json_string(b, k, (size_t)(eq - k));
        (void)!buf_puts(b, ":");
        p = eq + 1;
        buf_init(&v, 0);
        if (*p == '"') {
            p++;
            while (*p != '\0' && *p != '"') {
                if (*p == '\\' && p[1] != '\0') {
                    p += 1 + unescape_one(&v, p + 1);
                    continue;
                }
                (void)!buf_append(&v, p, 1);
                p++;
            }
            if (*p == '"') {
                p++;
            }
        } else {
            const char *e = strchr(p, ' ');
            size_t n = e ? (size_t)(e - p) : strlen(p);

            (void)!buf_append(&v, p, n);
            p += n;
        }
        (void)!buf_json_string(b, v.data ? v.data : "", v.len);
        buf_free(&v);
    }
    (void)!buf_puts(b, "}\n");
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
    char ts[32];
    char *line;
    struct buf b;
    va_list ap;

    if (level < min_level) {
        return;
    }
    va_start(ap, fmt);
    line = xvasprintf(fmt, ap);
    va_end(ap);
    util_fmt_time(util_now_ms(), ts);
    buf_init(&b, 0);
    if (json_lines) {
        emit_json(&b, ts, level, line);
    } else {
        (void)!buf_printf(&b, "time=%s level=%s event=%s\n", ts, level_names[level], line);
    }
    fwrite(b.data, 1, b.len, stderr);
    buf_free(&b);
    free(line);
}
