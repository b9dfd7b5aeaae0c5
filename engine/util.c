/* util.c: allocation, capped buffers, time, hashing and small parsers. */
#include "engine/util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

static void
oom(size_t n)
{
    fprintf(stderr, "level=err event=oom bytes=%zu\n", n);
    abort();
}

void *
xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL) {
        oom(n);
    }
    return p;
}

void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (p == NULL) {
        oom(n * size);
    }
    return p;
}

void *
xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (q == NULL) {
        oom(n);
    }
    return q;
}

char *
xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *
xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
xvasprintf(const char *fmt, va_list ap)
{
    va_list aq;
    int n;
    char *p;

    va_copy(aq, ap);
    n = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    if (n < 0) {
        return xstrdup("(format error)");
    }
    p = xmalloc((size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *
xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *p;

    va_start(ap, fmt);
    p = xvasprintf(fmt, ap);
    va_end(ap);
    return p;
}

int
kg_err(char **errp, const char *fmt, ...)
{
    va_list ap;

    if (errp != NULL) {
        va_start(ap, fmt);
        free(*errp);
        *errp = xvasprintf(fmt, ap);
        va_end(ap);
    }
    return -1;
}

void
buf_init(struct buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
    size_t need;

    if (b->max != 0 && (n > b->max || b->len > b->max - n)) {
        return -1;
    }
    need = b->len + n + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 64;

        while (cap < need) {
            cap *= 2;
        }
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    if (n > 0) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int
buf_puts(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return -1;
    }
    if ((size_t)n < sizeof(small)) {
        return buf_append(b, small, (size_t)n);
    } else {
        char *big;
        int rc;

        va_start(ap, fmt);
        big = xvasprintf(fmt, ap);
        va_end(ap);
        rc = buf_append(b, big, strlen(big));
        free(big);
        return rc;
    }
}

size_t
util_utf8_char(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t len;
    uint32_t cp;

    if (n == 0) {
        return 0;
    }
    if (u[0] < 0x80) {
        return 1;
    } else if (u[0] >= 0xc2 && u[0] <= 0xdf) {
        len = 2;
        cp = u[0] & 0x1f;
    } else if (u[0] >= 0xe0 && u[0] <= 0xef) {
        len = 3;
        cp = u[0] & 0x0f;
    } else if (u[0] >= 0xf0 && u[0] <= 0xf4) {
        len = 4;
        cp = u[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len) {
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        if ((u[i] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (u[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff))) {
        return 0;
    }
    return len;
}

/* The code point of the valid UTF-8 character of len bytes at s. */
static uint32_t
utf8_decode(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    uint32_t cp = len == 1 ? u[0] : len == 2 ? u[0] & 0x1f : len == 3 ? u[0] & 0x0f : u[0] & 0x07;

    for (size_t i = 1; i < len; i++) {
        cp = (cp << 6) | (u[i] & 0x3f);
    }
    return cp;
}

char *
util_utf8_clean(const char *s, size_t n, size_t *outlen)
{
    struct buf b;
    size_t i = 0, start = 0;

    buf_init(&b, 0);
    while (i < n) {
        size_t l = util_utf8_char(s + i, n - i);

        if (l > 0) {
            i += l;
            continue;
        }
        (void)!buf_append(&b, s + start, i - start);
        (void)!buf_append(&b, "\xef\xbf\xbd", 3);
        start = ++i;
    }
    (void)!buf_append(&b, s + start, n - start);
    if (outlen != NULL) {
        *outlen = b.len;
    }
    return buf_take(&b);
}

char *
util_cut_text(const char *s, size_t max)
{
    size_t n = strlen(s), keep = max;

    if (n <= max) {
        return xstrdup(s);
    }
    /* Back up over continuation bytes so that no character is split. */
    while (keep > 0 && ((unsigned char)s[keep] & 0xc0) == 0x80) {
        keep--;
    }
    return xasprintf("%.*s [... %zu bytes dropped]", (int)keep, s, n - keep);
}

int
buf_json_string(struct buf *b, const char *s, size_t n)
{
    static const char hexd[] = "0123456789abcdef";
    size_t i = 0, start = 0;

    if (buf_append(b, "\"", 1) == -1) {
        return -1;
    }
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t l;

        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') { /* the common case, at once */
            i++;
            continue;
        }
        l = c >= 0x20 && c < 0x7f ? 1 : util_utf8_char(s + i, n - i);
        uint32_t cp;
        char esc[7];
        size_t elen = 2;

        cp = l > 0 ? utf8_decode(s + i, l) : 0xfffd;

        if (l == 1 && c >= 0x20 && c != 0x7f && c != '"' && c != '\\') {
            i++;
            continue;
        }
        if (l > 1 && cp > 0x9f && cp != 0x2028 && cp != 0x2029) {
            i += l;
            continue;
        }
        if (buf_append(b, s + start, i - start) == -1) {
            return -1;
        }
        esc[0] = '\\';
        switch (cp) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[2] = hexd[(cp >> 12) & 15];
            esc[3] = hexd[(cp >> 8) & 15];
            esc[4] = hexd[(cp >> 4) & 15];
            esc[5] = hexd[cp & 15];
            elen = 6;
        }
        if (buf_append(b, esc, elen) == -1) {
            return -1;
        }
        i += l > 0 ? l : 1;
        start = i;
    }
    if (buf_append(b, s + start, n - start) == -1) {
        return -1;
    }
    return buf_append(b, "\"", 1);
}

int
buf_escape_text(struct buf *b, const char *s, size_t n, int flags)
{
    size_t i = 0, start = 0;

    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t l;

        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') { /* the common case, at once */
            i++;
            continue;
        }
        l = c >= 0x20 && c < 0x7f ? 1 : util_utf8_char(s + i, n - i);
        uint32_t cp = l > 0 ? utf8_decode(s + i, l) : 0;
        char esc[8];

        if (l == 1 &&
            ((c >= 0x20 && c != 0x7f && ((c != '"' && c != '\\') || !(flags & UTIL_ESC_QUOTES))) ||
             ((c == '\n' || c == '\t') && (flags & UTIL_ESC_KEEP_NL)))) {
            i++;
            continue;
        }
        if (l > 1 && cp > 0x9f && cp != 0x2028 && cp != 0x2029) {
            i += l;
            continue;
        }
        if (buf_append(b, s + start, i - start) == -1) {
            return -1;
        }
        if (l > 1) {
            snprintf(esc, sizeof(esc), "\\u%04x", (unsigned)cp);
        } else if (l == 1 && (c == '"' || c == '\\')) {
            snprintf(esc, sizeof(esc), "\\%c", c);
        } else if (l == 1 && (c == '\n' || c == '\r' || c == '\t')) {
            snprintf(esc, sizeof(esc), "\\%c", c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
        } else {
            snprintf(esc, sizeof(esc), "\\x%02x", c);
        }
        if (buf_puts(b, esc) == -1) {
            return -1;
        }
        i += l > 0 ? l : 1;
        start = i;
    }
    return buf_append(b, s + start, n - start);
}

void
buf_reserve(struct buf *b, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = b->len + n + 1;
        b->data = xrealloc(b->data, b->cap);
    }
}

void
buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data != NULL) {
        b->data[0] = '\0';
    }
}

char *
buf_take(struct buf *b)
{
    char *p = b->data;

    if (p == NULL) {
        p = xstrdup("");
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

void
buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

/* The test clock's shift (engine/testclock.c): 0 unless a test build enabled it. */
static _Atomic int64_t util_clock_shift;

int64_t
util_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 +
           atomic_load_explicit(&util_clock_shift, memory_order_relaxed);
}

void
util_set_clock_shift(int64_t ms)
{
    atomic_store_explicit(&util_clock_shift, ms, memory_order_relaxed);
}

int64_t
util_clock_shift_ms(void)
{
    return atomic_load_explicit(&util_clock_shift, memory_order_relaxed);
}

int64_t
util_mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void
util_fmt_time(int64_t ms, char *out)
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)secs * 1000);
    struct tm tm;

    char tmp[96];

    gmtime_r(&secs, &tm);
    snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    snprintf(out, 32, "%.31s", tmp);
}

static int
digits(const char **sp, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*sp)[i])) {
            return -1;
        }
        v = v * 10 + ((*sp)[i] - '0');
    }
    *sp += n;
    *out = v;
    return 0;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int64_t
days_from_civil(int y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int
util_parse_time(const char *s, int64_t *ms)
{
    int y, mo, d, h, mi, sec, frac = 0, oh = 0, om = 0, sign = 1;
    int64_t t;

    if (digits(&s, 4, &y) || *s++ != '-' || digits(&s, 2, &mo) || *s++ != '-' ||
        digits(&s, 2, &d)) {
        return -1;
    }
    if (*s != 'T' && *s != 't' && *s != ' ') {
        return -1;
    }
    s++;
    if (digits(&s, 2, &h) || *s++ != ':' || digits(&s, 2, &mi) || *s++ != ':' ||
        digits(&s, 2, &sec)) {
        return -1;
    }
    if (*s == '.') {
        int n = 0;

        s++;
        if (!isdigit((unsigned char)*s)) {
            return -1;
        }
        while (isdigit((unsigned char)*s)) {
            if (n < 3) {
                frac = frac * 10 + (*s - '0');
            }
            n++;
            s++;
        }
        while (n < 3) {
            frac *= 10;
            n++;
        }
    }
    if (*s == 'Z' || *s == 'z') {
        s++;
    } else if (*s == '+' || *s == '-') {
        sign = *s == '-' ? -1 : 1;
        s++;
        if (digits(&s, 2, &oh) || *s++ != ':' || digits(&s, 2, &om)) {
            return -1;
        }
    } else {
        return -1;
    }
    if (*s != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 ||
        oh > 23 || om > 59) {
        return -1;
    }
    t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    t -= sign * (oh * 3600 + om * 60);
    *ms = t * 1000 + frac;
    return 0;
}

void
util_hex(const void *p, size_t n, char *out)
{
    static const char hexd[] = "0123456789abcdef";
    const unsigned char *u = p;

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexd[u[i] >> 4];
        out[2 * i + 1] = hexd[u[i] & 15];
    }
    out[2 * n] = '\0';
}

void
util_sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;

    if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        abort();
    }
    util_hex(md, 32, out);
}

int
util_random(void *p, size_t n)
{
    return RAND_bytes(p, (int)n) == 1 ? 0 : -1;
}

int
util_parse_size(const char *s, size_t *out)
{
    char *end;
    double v;
    double mult = 1;

    errno = 0;
    v = strtod(s, &end);
    if (end == s || errno != 0 || !(v >= 0) || isinf(v)) {
        return -1;
    }
    while (*end == ' ') {
        end++;
    }
    if (*end == '\0' || strcasecmp(end, "b") == 0) {
        mult = 1;
    } else if (strcasecmp(end, "k") == 0 || strcasecmp(end, "kb") == 0 ||
               strcasecmp(end, "kib") == 0) {
        mult = 1024.0;
    } else if (strcasecmp(end, "m") == 0 || strcasecmp(end, "mb") == 0 ||
               strcasecmp(end, "mib") == 0) {
        mult = 1024.0 * 1024;
    } else if (strcasecmp(end, "g") == 0 || strcasecmp(end, "gb") == 0 ||
               strcasecmp(end, "gib") == 0) {
        mult = 1024.0 * 1024 * 1024;
    } else {
        return -1;
    }
    v *= mult;
    if (v > (double)SIZE_MAX / 2) {
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

int
util_parse_duration(const char *s, double *secs)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (end == s || errno != 0 || !(v >= 0) || isinf(v)) {
        return -1;
    }
    if (*end == '\0' || strcmp(end, "s") == 0) {
        *secs = v;
    } else if (strcmp(end, "ms") == 0) {
        *secs = v / 1000;
    } else if (strcmp(end, "m") == 0) {
        *secs = v * 60;
    } else if (strcmp(end, "h") == 0) {
        *secs = v * 3600;
    } else if (strcmp(end, "d") == 0) {
        *secs = v * 86400;
    } else {
        return -1;
    }
    return 0;
}

int
util_mkdirs(const char *path, unsigned mode)
{
    char *p = xstrdup(path);
    int rc = 0;

    for (char *q = p + 1; *q != '\0'; q++) {
        if (*q == '/') {
            *q = '\0';
            if (mkdir(p, mode) == -1 && errno != EEXIST) {
                rc = -1;
                goto out;
            }
            *q = '/';
        }
    }
    if (mkdir(p, mode) == -1 && errno != EEXIST) {
        rc = -1;
    }
out:
    free(p);
    return rc;
}

char *
util_read_file(const char *path, size_t max, size_t *len, char **errp)
{
    struct buf b;
    char chunk[16384];
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd == -1) {
        kg_err(errp, "%s: %s", path, strerror(errno));
        return NULL;
    }
    buf_init(&b, max);
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));

        if (n == 0) {
            break;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            kg_err(errp, "%s: %s", path, strerror(errno));
            goto fail;
        }
        if (buf_append(&b, chunk, (size_t)n) == -1) {
            kg_err(errp, "%s: larger than %zu bytes", path, max);
            goto fail;
        }
    }
    close(fd);
    if (len != NULL) {
        *len = b.len;
    }
    return buf_take(&b);
fail:
    close(fd);
    buf_free(&b);
    return NULL;
}

int
util_write_file(const char *path, const void *p, size_t n, unsigned mode, char **errp)
{
    char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    const char *c = p;
    int rc = -1;

    if (fd == -1) {
        kg_err(errp, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    while (n > 0) {
        ssize_t w = write(fd, c, n);

        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            kg_err(errp, "%s: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            goto out;
        }
        c += w;
        n -= (size_t)w;
    }
    if (fsync(fd) == -1 || close(fd) == -1) {
        kg_err(errp, "%s: %s", tmp, strerror(errno));
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) == -1) {
        kg_err(errp, "%s: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    free(tmp);
    return rc;
}

/* Parse "host:port", "[v6]:port" or ":port" (all IPv4) with a numeric host. */
int
util_parse_listen(const char *addr, struct sockaddr_storage *ss, socklen_t *sslen, char **errp)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port, *hend;
    int v6 = 0;
    long pn = 0;

    if (addr[0] == '[') {
        hend = strchr(addr, ']');
        if (hend == NULL || hend[1] != ':') {
            return kg_err(errp, "listen address %s: expected [address]:port", addr);
        }
        port = hend + 2;
        addr++;
        v6 = 1;
    } else {
        hend = strrchr(addr, ':');
        if (hend == NULL) {
            return kg_err(errp, "listen address %s: missing :port", addr);
        }
        port = hend + 1;
    }
    if ((size_t)(hend - addr) >= sizeof(host)) {
        return kg_err(errp, "listen address %s: bad host", addr);
    }
    memcpy(host, addr, (size_t)(hend - addr));
    host[hend - addr] = '\0';
    if (port[0] == '\0' || strlen(port) > 5) {
        return kg_err(errp, "listen address %s: bad port", addr);
    }
    for (const char *p = port; *p != '\0'; p++) {
        if (*p < '0' || *p > '9') {
            return kg_err(errp, "listen address %s: bad port", addr);
        }
        pn = pn * 10 + (*p - '0');
    }
    if (pn > 65535) {
        return kg_err(errp, "listen address %s: bad port", addr);
    }
    memset(ss, 0, sizeof(*ss));
    if (v6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)pn);
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
            return kg_err(errp, "listen address %s: not a numeric IPv6 address", host);
        }
        *sslen = sizeof(*sin6);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;

        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)pn);
        if (host[0] == '\0') {
            sin->sin_addr.s_addr = htonl(INADDR_ANY);
        } else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
            return kg_err(errp, "listen address %s: not a numeric IPv4 address", host);
        }
        *sslen = sizeof(*sin);
    }
    return 0;
}

/* The engine's own listening ports (a small fixed set: intake, later syslog and portal). */
static int own_ports[32];
static size_t nown_ports;

void
util_own_port_add(int port)
{
    if (nown_ports < sizeof(own_ports) / sizeof(own_ports[0])) {
        own_ports[nown_ports++] = port;
    }
}

void
util_own_port_del(int port)
{
    for (size_t i = 0; i < nown_ports; i++) {
        if (own_ports[i] == port) {
            own_ports[i] = own_ports[--nown_ports];
            return;
        }
    }
}

int
util_own_port(int port)
{
    for (size_t i = 0; i < nown_ports; i++) {
        if (own_ports[i] == port) {
            return 1;
        }
    }
    return 0;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void
util_rm_tree(const char *dir)
{
    (void)nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
