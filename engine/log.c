/* log.c: one structured line per event on stderr. */
#include "engine/log.h"

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

const char *
log_quote(const char *s)
{
    static char ring[4][512];
    static int next;
    char *out = ring[next++ & 3];
    size_t o = 0;

    out[o++] = '"';
    for (; *s != '\0' && o < sizeof(ring[0]) - 4; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            out[o++] = '\\';
            out[o++] = c == '\n' ? 'n' : c == '\t' ? 't' : '?';
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
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
                    p++;
                    (void)!buf_append(&v, *p == 'n' ? "\n" : p, 1);
                } else {
                    (void)!buf_append(&v, p, 1);
                }
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
