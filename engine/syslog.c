/* syslog.c: the syslog intake source. Listeners (UDP, TCP, TLS) read messages, find each
 * sender's tenant, parse the header and the PAN-OS record, and hand each read's records
 * to the admit step in one batch per tenant and kind (alerts, events), so that a busy
 * iteration stores them all in one transaction. A connection whose records are not yet
 * stored stops being read past a bound (TCP pushes back instead of losing); a batch the
 * store could not take for now (locked, commit failed) is normalized again and retried. */
#include "engine/syslog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "engine/kagari.h"
#include "engine/panoslog.h"
#include "engine/store.h"
#include "engine/tls.h"
#include "engine/work.h"

#define SYSLOG_UDP_BATCH 64        /* datagrams per recvmmsg */
#define SYSLOG_UDP_JOB 4096        /* datagrams handed to the parser at most at once */
#define SYSLOG_UDP_JOB_MS 20       /* the longest a datagram waits for its job to fill */
#define SYSLOG_UDP_POLL_MS 100     /* the receiver looks at its stop flag this often */
#define SYSLOG_UDP_DGRAM_MAX 65535 /* bytes of one datagram */
#define SYSLOG_READ_MAX (1u << 20) /* bytes one TCP read may take: what arrived during a commit */
#define SYSLOG_PENDING_MAX 50000   /* messages of a connection waiting for their commit */
#define SYSLOG_RETRY_MS 500        /* a batch the store could not take is retried after */
#define SYSLOG_MAX_MESSAGE_MAX (16u << 20)
#define SYSLOG_LOG_EVERY_MS 1000 /* garbled and unknown senders: one log line per second */
#define SYSLOG_PARSE_QUEUE 64    /* reads waiting for the parser thread, at most */

/* ---- framing ---- */

enum syslog_frame_rc
syslog_frame(struct syslog_framer *fr, const char *p, size_t n, size_t *used, size_t *off,
             size_t *mlen, const char **why)
{
    *used = *off = *mlen = 0;
    *why = NULL;
    if (n == 0) {
        return SYSLOG_FRAME_MORE;
    }
    if (fr->mode == SYSLOG_FRAMING_UNKNOWN) {
        fr->mode = p[0] >= '1' && p[0] <= '9' ? SYSLOG_FRAMING_OCTET : SYSLOG_FRAMING_LF;
    }
    if (fr->mode == SYSLOG_FRAMING_OCTET) {
        size_t i = 0, len = 0;

        while (i < n && i < 10 && p[i] >= '0' && p[i] <= '9') {
            len = len * 10 + (size_t)(p[i] - '0');
            i++;
        }
        if (i == n) {
            if (i >= 10) {
                *used = n;
                *why = "octet count: more than 9 digits";
                return SYSLOG_FRAME_FATAL;
            }
            return SYSLOG_FRAME_MORE;
        }
        if (i == 0 || p[0] == '0' || p[i] != ' ') {
            *used = n;
            *why = "octet count: expected digits and a space";
            return SYSLOG_FRAME_FATAL;
        }
        if (len > fr->max) {
            *used = n;
            *why = "octet count: longer than the message limit";
            return SYSLOG_FRAME_FATAL;
        }
        if (n - i - 1 < len) {
            return SYSLOG_FRAME_MORE;
        }
        *off = i + 1;
        *mlen = len;
        *used = i + 1 + len;
        return SYSLOG_FRAME_OK;
    } else {
        const char *lf = memchr(p, '\n', n < fr->max + 2 ? n : fr->max + 2);

        if (lf == NULL) {
            if (n <= fr->max + 1) {
                if (!fr->discarding) {
                    return SYSLOG_FRAME_MORE;
                }
            }
            *used = n < fr->max + 2 ? n : fr->max + 2;
            if (fr->discarding) {
                return SYSLOG_FRAME_SKIPPED; /* more of the line already reported */
            }
            fr->discarding = 1;
            *why = "line longer than the message limit";
            return SYSLOG_FRAME_SKIPPED;
        }
        *used = (size_t)(lf - p) + 1;
        if (fr->discarding) { /* the end of an over-long line */
            fr->discarding = 0;
            return SYSLOG_FRAME_SKIPPED;
        }
        *mlen = (size_t)(lf - p);
        if (*mlen > 0 && p[*mlen - 1] == '\r') {
            (*mlen)--;
        }
        if (*mlen > fr->max) {
            *why = "line longer than the message limit";
            *mlen = 0;
            return SYSLOG_FRAME_SKIPPED;
        }
        return SYSLOG_FRAME_OK;
    }
}

/* ---- headers ---- */

/* The next space-delimited token of an RFC 5424 header at *p (end e). */
static int
token(const char **p, const char *e, const char **t, size_t *tl)
{
    const char *s = *p, *sp;

    if (s >= e) {
        return -1;
    }
    sp = memchr(s, ' ', (size_t)(e - s));
    *t = s;
    *tl = (size_t)((sp != NULL ? sp : e) - s);
    *p = sp != NULL ? sp + 1 : e;
    return *tl > 0 ? 0 : -1;
}

static int
parse5424(const char *p, const char *e, struct syslog_msg *out, const char **why)
{
    const char *t;
    size_t tl;
    char ts[64];

    /* TIMESTAMP HOSTNAME APP-NAME PROCID MSGID */
    if (token(&p, e, &t, &tl) == -1) {
        *why = "RFC 5424 header: no timestamp";
        return -1;
    }
    if (!(tl == 1 && t[0] == '-')) {
        if (tl >= sizeof(ts)) {
            *why = "RFC 5424 header: malformed timestamp";
            return -1;
        }
        memcpy(ts, t, tl);
        ts[tl] = '\0';
        if (util_parse_time(ts, &out->time_ms) == -1) {
            *why = "RFC 5424 header: malformed timestamp";
            return -1;
        }
    }
    if (token(&p, e, &t, &tl) == -1) {
        *why = "RFC 5424 header: no hostname";
        return -1;
    }
    if (!(tl == 1 && t[0] == '-')) {
        out->host = t;
        out->host_len = tl;
    }
    for (int i = 0; i < 3; i++) {
        if (token(&p, e, &t, &tl) == -1) {
            *why = "RFC 5424 header: truncated";
            return -1;
        }
    }
    /* STRUCTURED-DATA: "-" or one or more [id param="value" ...] with \" \] \\ escapes */
    if (p >= e) {
        *why = "RFC 5424 header: no structured data";
        return -1;
    }
    if (*p == '-') {
        p++;
    } else if (*p == '[') {
        while (p < e && *p == '[') {
            int inq = 0;

            p++;
            while (p < e && (inq || *p != ']')) {
                if (*p == '\\' && p + 1 < e) {
                    p += 2;
                    continue;
                }
                if (*p == '"') {
                    inq = !inq;
                }
                p++;
            }
            if (p >= e) {
                *why = "RFC 5424 header: unterminated structured data";
                return -1;
            }
            p++;
        }
    } else {
        *why = "RFC 5424 header: malformed structured data";
        return -1;
    }
    if (p < e && *p == ' ') {
        p++;
    }
    if (e - p >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
        p += 3;
    }
    out->body = p;
    out->body_len = (size_t)(e - p);
    return 0;
}

/* RFC 3164: "Mmm dd hh:mm:ss HOSTNAME MSG"; the hostname may be missing (then the MSG
 * follows the time: a token with a comma or a colon is taken as the MSG). */
static void
parse3164(const char *p, const char *e, struct syslog_msg *out)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    size_t n = (size_t)(e - p);

    if (n >= 16 && p[3] == ' ' && p[6] == ' ' && p[9] == ':' && p[12] == ':' && p[15] == ' ') {
        int month = 0;

        for (int i = 0; i < 12; i++) {
            month |= memcmp(p, months + 3 * i, 3) == 0;
        }
        if (month) {
            const char *h = p + 16, *sp = memchr(h, ' ', (size_t)(e - h));

            p += 16;
            if (sp != NULL && sp > h && memchr(h, ',', (size_t)(sp - h)) == NULL &&
                memchr(h, ':', (size_t)(sp - h)) == NULL &&
                memchr(h, '[', (size_t)(sp - h)) == NULL) {
                out->host = h;
                out->host_len = (size_t)(sp - h);
                p = sp + 1;
            }
        }
    }
    out->body = p;
    out->body_len = (size_t)(e - p);
}

int
syslog_parse(const char *m, size_t n, struct syslog_msg *out, const char **why)
{
    const char *e = m + n, *p = m;

    memset(out, 0, sizeof(*out));
    out->pri = -1;
    *why = NULL;
    if (n == 0 || m[0] != '<') {
        out->body = m;
        out->body_len = n;
        return 0;
    }
    {
        size_t i = 1;
        int pri = 0;

        while (i < n && i < 5 && m[i] >= '0' && m[i] <= '9') {
            pri = pri * 10 + (m[i] - '0');
            i++;
        }
        if (i == 1 || i >= n || m[i] != '>' || i > 4 || pri > 191 || (m[1] == '0' && i > 2)) {
            *why = "malformed PRI";
            return -1;
        }
        out->pri = pri;
        p = m + i + 1;
    }
    if (e - p >= 2 && p[0] == '1' && p[1] == ' ') {
        out->rfc5424 = 1;
        return parse5424(p + 2, e, out, why);
    }
    parse3164(p, e, out);
    return 0;
}

/* ---- settings ---- */

struct syslog_conf {
    char **listen; /* "udp|tcp|tls host:port [tenant]" */
    size_t nlisten;
    char **senders; /* "address[/prefix] tenant" */
    size_t nsenders;
    char *tls_cert, *tls_key;
    char *tls_ca; /* clients must present a certificate this CA signed */
    size_t max_message;
    int max_conns;
    int max_conns_per_peer;
    double idle_timeout;
    size_t udp_buffer;
    char *utc_offset; /* "+09:00" */
    int offset_min;   /* parsed by the check */
};

static const struct config_field syslog_fields[] = {
    { "listen", CONFIG_STRINGS, offsetof(struct syslog_conf, listen), 0, 0, NULL,
      offsetof(struct syslog_conf, nlisten) },
    { "senders", CONFIG_STRINGS, offsetof(struct syslog_conf, senders), 0, 0, NULL,
      offsetof(struct syslog_conf, nsenders) },
    { "tls_cert", CONFIG_PATH, offsetof(struct syslog_conf, tls_cert), 0, 0, NULL, 0 },
    { "tls_key", CONFIG_PATH, offsetof(struct syslog_conf, tls_key), 0, 0, NULL, 0 },
    { "tls_ca", CONFIG_PATH, offsetof(struct syslog_conf, tls_ca), 0, 0, NULL, 0 },
    { "max_message", CONFIG_SIZE, offsetof(struct syslog_conf, max_message), 480, 16 << 20, NULL,
      0 },
    { "max_conns", CONFIG_INT, offsetof(struct syslog_conf, max_conns), 1, 1000000, NULL, 0 },
    { "max_conns_per_peer", CONFIG_INT, offsetof(struct syslog_conf, max_conns_per_peer), 1,
      1000000, NULL, 0 },
    { "idle_timeout", CONFIG_DURATION, offsetof(struct syslog_conf, idle_timeout), 1, 0, NULL, 0 },
    { "udp_buffer", CONFIG_SIZE, offsetof(struct syslog_conf, udp_buffer), 65536, 1 << 30, NULL,
      0 },
    { "utc_offset", CONFIG_STRING, offsetof(struct syslog_conf, utc_offset), 0, 0, NULL, 0 },
    CONFIG_FIELDS_END,
};

enum proto { P_UDP, P_TCP, P_TLS };
static const char *const proto_names[] = { "udp", "tcp", "tls" };

/* One sender rule: an address or a network, and its tenant. */
struct sender {
    int family;
    unsigned char addr[16];
    int prefix;
    char tenant[64];
};

static int
tenant_name_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 63) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-')) {
            return 0;
        }
    }
    return 1;
}

static int
sender_parse(const char *text, struct sender *out, char **errp)
{
    char a[128], t[128], *slash;
    int bits;

    memset(out, 0, sizeof(*out));
    if (sscanf(text, "%127s %127s", a, t) != 2 || !tenant_name_valid(t)) {
        return kg_err(errp, "\"%s\": expected \"address[/prefix] tenant\"", text);
    }
    if ((slash = strchr(a, '/')) != NULL) {
        *slash++ = '\0';
    }
    out->family = strchr(a, ':') != NULL ? AF_INET6 : AF_INET;
    bits = out->family == AF_INET ? 32 : 128;
    if (inet_pton(out->family, a, out->addr) != 1) {
        return kg_err(errp, "\"%s\": %s is not an IP address", text, a);
    }
    out->prefix = bits;
    if (slash != NULL) {
        char *end;
        long v = strtol(slash, &end, 10);

        if (*slash == '\0' || *end != '\0' || v < 0 || v > bits) {
            return kg_err(errp, "\"%s\": prefix length from 0 to %d", text, bits);
        }
        out->prefix = (int)v;
    }
    memcpy(out->tenant, t, strlen(t) + 1); /* valid: at most 63 bytes */
    return 0;
}

struct listen_spec {
    enum proto proto;
    char addr[128];
    char tenant[64]; /* "" : by sender only */
};

static int
listen_parse(const char *text, struct listen_spec *out, char **errp)
{
    char p[16], a[128], t[128] = "";
    int n = sscanf(text, "%15s %127s %127s", p, a, t);
    struct sockaddr_storage ss;
    socklen_t sl;
    int i;

    memset(out, 0, sizeof(*out));
    for (i = 0; i < 3 && n >= 1 && strcmp(p, proto_names[i]) != 0; i++) {
    }
    if (n < 2 || i == 3 || (n == 3 && !tenant_name_valid(t))) {
        return kg_err(errp, "\"%s\": expected \"udp|tcp|tls host:port [tenant]\"", text);
    }
    if (util_parse_listen(a, &ss, &sl, errp) == -1) {
        return -1;
    }
    out->proto = (enum proto)i;
    snprintf(out->addr, sizeof(out->addr), "%s", a);
    if (n == 3) {
        memcpy(out->tenant, t, strlen(t) + 1); /* valid: at most 63 bytes */
    }
    return 0;
}

static int
offset_parse(const char *s, int *min)
{
    int h, m;
    char sign, extra;

    if (s == NULL) {
        *min = 0;
        return 0;
    }
    if (strcmp(s, "Z") == 0 || strcmp(s, "UTC") == 0) {
        *min = 0;
        return 0;
    }
    if (sscanf(s, "%c%2d:%2d%c", &sign, &h, &m, &extra) != 3 || (sign != '+' && sign != '-') ||
        strlen(s) != 6 || h > 14 || m > 59) {
        return -1;
    }
    *min = (sign == '-' ? -1 : 1) * (h * 60 + m);
    return 0;
}

static int
syslog_check(void *conf, char **errp)
{
    struct syslog_conf *c = conf;
    int tls = 0;

    if (c->max_message == 0) {
        c->max_message = SYSLOG_MAX_MESSAGE_DEFAULT;
    }
    if (c->max_conns == 0) {
        c->max_conns = 1024;
    }
    if (c->max_conns_per_peer == 0) {
        c->max_conns_per_peer = 16;
    }
    if (c->idle_timeout == 0) {
        c->idle_timeout = 600;
    }
    if (c->udp_buffer == 0) {
        c->udp_buffer = 8u << 20;
    }
    if (c->max_message > SYSLOG_MAX_MESSAGE_MAX) {
        return kg_err(errp, "max_message: at most 16MiB");
    }
    if (c->udp_buffer > (1u << 30)) {
        return kg_err(errp, "udp_buffer: at most 1GiB");
    }
    if (offset_parse(c->utc_offset, &c->offset_min) == -1) {
        return kg_err(errp, "utc_offset: expected \"+09:00\", \"-05:00\" or \"UTC\"");
    }
    for (size_t i = 0; i < c->nlisten; i++) {
        struct listen_spec ls;
        char *err = NULL;

        if (listen_parse(c->listen[i], &ls, &err) == -1) {
            kg_err(errp, "listen[%zu]: %s", i + 1, err);
            free(err);
            return -1;
        }
        tls |= ls.proto == P_TLS;
    }
    for (size_t i = 0; i < c->nsenders; i++) {
        struct sender sd;
        char *err = NULL;

        if (sender_parse(c->senders[i], &sd, &err) == -1) {
            kg_err(errp, "senders[%zu]: %s", i + 1, err);
            free(err);
            return -1;
        }
    }
    if (tls && (c->tls_cert == NULL || c->tls_key == NULL)) {
        return kg_err(errp, "a tls listener needs tls_cert and tls_key");
    }
    return 0;
}

static const struct config_section syslog_section = {
    "syslog", syslog_fields, sizeof(struct syslog_conf), syslog_check, NULL,
};

/* ---- state ---- */

struct syslog;

struct listener {
    struct syslog *s;
    enum proto proto;
    char tenant[64];
    int port;
    evutil_socket_t fd;         /* UDP */
    struct evconnlistener *lev; /* TCP, TLS */
    uint32_t drops;             /* the kernel's drop counter, as the loop last read it */
    uint32_t ovfl;              /* its SO_RXQ_OVFL as the receiver last saw it (atomic) */
    char *dgrams;               /* UDP: SYSLOG_UDP_BATCH buffers (the receiver's) */
    pthread_t rx;               /* UDP: the receiver thread */
    int rx_running;             /* it was started and not yet joined */
    int rx_quit;                /* set (atomic) to stop it */
};

struct conn {
    struct syslog *s;
    struct listener *l;
    struct bufferevent *bev; /* TLS */
    evutil_socket_t fd;      /* plain TCP: read directly, in large reads */
    struct event *ev;
    char *in; /* plain TCP: bytes read and not yet framed */
    size_t inlen, incap;
    struct sockaddr_storage peer;
    char peer_text[64];
    char tenant[64]; /* "" : unknown sender (the connection is refused) */
    struct syslog_framer fr;
    size_t pending; /* messages handed to the store, not yet committed */
    int paused;     /* reading stopped until pending falls */
    int closed;     /* the socket is gone; freed once pending is 0 */
    struct conn *prev, *next;
};

/* One batch handed to the admit step: its records (for a retry, as received) and
 * where they came from. */
struct sub {
    struct syslog *s;
    struct conn *c; /* NULL for UDP */
    char tenant[64];
    int events;
    struct alert *v;
    size_t n, cap;
    struct buf msgs; /* alerts: each message, its length (size_t) then its bytes */
    size_t nmsgs;
    struct event *retry;
    struct sub *prev, *next; /* waiting for a retry */
};

struct stats {
    unsigned long long messages[3], alerts, events, garbled, oversize, unknown_sender,
        conns_refused, idle_closed, retries, lost, framing_errors, tls_errors;
};

struct syslog {
    struct syslog_conf conf; /* copied scalars; lists and strings borrowed from the config */
    const struct syslog_conf *cfg;
    struct sender *senders;
    size_t nsenders;
    struct listener *ls;
    size_t nls;
    SSL_CTX *ssl;
    struct conn *conns;
    size_t nconns;
    struct sub *waiting; /* subs waiting for their retry timer */
    int draining;
    int stopping;       /* syslog_stop: parsed reads are no longer admitted */
    struct work *parse; /* the parser thread: headers and records, off the loop */
    struct stats st;
    struct {
        const char *what;          /* the kind of line: "garbled", "oversize", ... */
        int64_t ms;                /* when one was last logged */
        unsigned long long hushed; /* lines of that kind not logged since */
    } notes[8];
};

/* The accumulator of one read: a sub per (tenant, kind). */
struct acc {
    struct sub *v[16];
    size_t n;
};

/* ---- logging, rate-limited ---- */

/* n lines of one kind (peer: the first one's sender), logged at most once a second. */
static void
note_n(struct syslog *s, const char *what, const char *peer, const char *why, unsigned long long n)
{
    int64_t now = util_now_ms();
    size_t i, kinds = sizeof(s->notes) / sizeof(s->notes[0]);

    /* One budget per kind, so that a flood of one kind hides no other. */
    for (i = 0; i < kinds - 1 && s->notes[i].what != NULL && strcmp(s->notes[i].what, what) != 0;
         i++) {
    }
    if (s->notes[i].what == NULL) {
        s->notes[i].what = what;
    }
    if (s->notes[i].ms != 0 && now - s->notes[i].ms < SYSLOG_LOG_EVERY_MS) {
        s->notes[i].hushed += n;
        return;
    }
    log_warn("syslog.%s peer=%s reason=%s suppressed=%llu", what, peer, log_quote(why),
             s->notes[i].hushed);
    s->notes[i].ms = now;
    s->notes[i].hushed = n - 1;
}

static void
note(struct syslog *s, const char *what, const char *peer, const char *why)
{
    note_n(s, what, peer, why, 1);
}

/* ---- tenants ---- */

static int
addr_in(const struct sender *sd, const struct sockaddr_storage *ss)
{
    const unsigned char *a;
    unsigned char v4[16];
    int bits = sd->prefix;

    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *in6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;

        if (sd->family == AF_INET && IN6_IS_ADDR_V4MAPPED(in6)) {
            memcpy(v4, in6->s6_addr + 12, 4);
            a = v4;
        } else if (sd->family == AF_INET6) {
            a = in6->s6_addr;
        } else {
            return 0;
        }
    } else if (ss->ss_family == AF_INET && sd->family == AF_INET) {
        a = (const unsigned char *)&((const struct sockaddr_in *)ss)->sin_addr;
    } else {
        return 0;
    }
    for (int i = 0; bits > 0; i++, bits -= 8) {
        unsigned char mask = bits >= 8 ? 0xff : (unsigned char)(0xff << (8 - bits));

        if ((a[i] & mask) != (sd->addr[i] & mask)) {
            return 0;
        }
    }
    return 1;
}

/* The sender's tenant: the first sender rule that holds its address, else the
 * listener's tenant, else NULL (unknown sender). */
static const char *
tenant_of(struct syslog *s, const struct listener *l, const struct sockaddr_storage *peer)
{
    for (size_t i = 0; i < s->nsenders; i++) {
        if (addr_in(&s->senders[i], peer)) {
            return s->senders[i].tenant;
        }
    }
    return l->tenant[0] != '\0' ? l->tenant : NULL;
}

static void
peer_text(const struct sockaddr_storage *ss, char *out, size_t n)
{
    char a[INET6_ADDRSTRLEN] = "?";

    if (ss->ss_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, a, sizeof(a));
    } else if (ss->ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, a, sizeof(a));
    }
    snprintf(out, n, "%s", a);
}

/* ---- normalizing ---- */

/* One message (header and record) into *a; *dflt is the source's alert default. */
static int
normalize_one(const char *m, size_t n, int offset_min, int64_t received_ms, struct alert *a,
              int *dflt, char **errp)
{
    struct syslog_msg sm;
    struct panoslog_in in;
    const char *why;

    if (syslog_parse(m, n, &sm, &why) == -1) {
        return kg_err(errp, "%s", why);
    }
    if (sm.body_len == 0) {
        return kg_err(errp, "an empty message");
    }
    memset(&in, 0, sizeof(in));
    in.csv = sm.body;
    in.len = sm.body_len;
    in.msg = m;
    in.msg_len = n;
    in.header_ms = sm.time_ms;
    in.received_ms = received_ms;
    in.utc_offset_min = offset_min;
    return panoslog_normalize(&in, a, dflt, errp);
}

static void sub_done(void *arg, const struct admit_result *res);

static struct sub *
sub_new(struct syslog *s, struct conn *c, const char *tenant, int events)
{
    struct sub *b = xcalloc(1, sizeof(*b));

    b->s = s;
    b->c = c;
    snprintf(b->tenant, sizeof(b->tenant), "%s", tenant);
    b->events = events;
    buf_init(&b->msgs, 0);
    return b;
}

static void
sub_push(struct sub *b, const char *m, size_t n, struct alert *a)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->v = xrealloc(b->v, b->cap * sizeof(*b->v));
    }
    b->v[b->n++] = *a;
    if (!b->events) { /* kept to retry; the admit step keeps and retries events itself */
        (void)!buf_append(&b->msgs, &n, sizeof(n));
        (void)!buf_append(&b->msgs, m, n);
    }
    b->nmsgs++;
}

static void
sub_free(struct sub *b)
{
    for (size_t i = 0; i < b->n; i++) {
        alert_free(&b->v[i]);
    }
    free(b->v);
    buf_free(&b->msgs);
    if (b->retry != NULL) {
        event_free(b->retry);
    }
    free(b);
}

static void conn_maybe_free(struct conn *c);
static void conn_resume(struct conn *c);

/* The batch is answered (stored or given up): release its connection's budget. */
static void
sub_release(struct sub *b)
{
    struct conn *c = b->c;

    if (c != NULL) {
        c->pending -= b->nmsgs;
        if (c->paused && !c->closed && c->pending < SYSLOG_PENDING_MAX / 2) {
            c->paused = 0;
            conn_resume(c);
        }
        conn_maybe_free(c);
    }
    sub_free(b);
}

static void
sub_admit(struct sub *b)
{
    struct tenant *t = tenant_find(b->tenant);
    struct alert *v = b->v;
    size_t n = b->n;

    if (t == NULL) { /* the tenant went away (or never was): nothing to store it in */
        b->s->st.unknown_sender += b->nmsgs;
        note(b->s, "unknown_tenant", b->tenant, "no such tenant");
        sub_release(b);
        return;
    }
    b->v = NULL;
    b->n = b->cap = 0;
    if (b->events) {
        admit_events(t, v, n, sub_done, b);
    } else {
        admit_alerts(t, v, n, sub_done, b);
    }
}

/* Normalize the kept messages again (the alerts went to the admit step) and resubmit. */
static void
sub_retry(evutil_socket_t fd, short what, void *arg)
{
    struct sub *b = arg;
    struct syslog *s = b->s;
    size_t off = 0;
    int64_t now = util_now_ms();

    (void)fd;
    (void)what;
    if (b->prev != NULL) {
        b->prev->next = b->next;
    } else {
        s->waiting = b->next;
    }
    if (b->next != NULL) {
        b->next->prev = b->prev;
    }
    b->prev = b->next = NULL;
    while (off < b->msgs.len) {
        size_t n;
        struct alert a;
        int dflt;
        char *err = NULL;

        memcpy(&n, b->msgs.data + off, sizeof(n));
        off += sizeof(n);
        if (normalize_one(b->msgs.data + off, n, s->conf.offset_min, now, &a, &dflt, &err) == 0) {
            if (b->n == b->cap) {
                b->cap = b->cap ? b->cap * 2 : 64;
                b->v = xrealloc(b->v, b->cap * sizeof(*b->v));
            }
            b->v[b->n++] = a;
        }
        free(err);
        off += n;
    }
    s->st.retries++;
    sub_admit(b);
}

static void
sub_done(void *arg, const struct admit_result *res)
{
    struct sub *b = arg;
    struct syslog *s = b->s;

    switch (res->status) {
    case ADMIT_OK:
        /* The admit step decides each record's class again (a rule may have changed
         * since): count what it stored. */
        s->st.events += res->events;
        s->st.alerts += res->accepted - res->events;
        sub_release(b);
        return;
    case ADMIT_UNAVAILABLE:
    case ADMIT_LOCKED:
        if (!s->draining && !b->events) {
            struct timeval tv = { 0, SYSLOG_RETRY_MS * 1000 };

            if (b->retry == NULL) {
                b->retry = evtimer_new(loop_base(), sub_retry, b);
            }
            b->next = s->waiting;
            if (s->waiting != NULL) {
                s->waiting->prev = b;
            }
            s->waiting = b;
            evtimer_add(b->retry, &tv);
            return;
        }
        /* fall through */
    case ADMIT_FAILED:
    case ADMIT_SHUTTING_DOWN:
        s->st.lost += b->nmsgs;
        log_err("syslog.not_stored tenant=%s n=%zu status=%d", b->tenant, b->nmsgs,
                (int)res->status);
        sub_release(b);
        return;
    }
}

/* One normalized record a (taken) of message m from a sender of tenant: into the batch of
 * its tenant and kind (the tenant's rule decides alert or event). */
static void
place(struct syslog *s, struct conn *c, const char *tenant, const char *m, size_t n,
      struct alert *a, int dflt, struct acc *acc)
{
    int is_alert;
    struct tenant *t;
    struct sub *b = NULL;

    t = tenant_find(tenant);
    is_alert = t != NULL ? admit_is_alert(t, a, dflt) : dflt;
    for (size_t i = 0; i < acc->n; i++) {
        if (acc->v[i]->events == !is_alert && strcmp(acc->v[i]->tenant, tenant) == 0) {
            b = acc->v[i];
            break;
        }
    }
    if (b == NULL) {
        if (acc->n == sizeof(acc->v) / sizeof(acc->v[0])) { /* many tenants in one read */
            sub_admit(acc->v[0]);
            memmove(acc->v, acc->v + 1, (acc->n - 1) * sizeof(acc->v[0]));
            acc->n--;
        }
        b = sub_new(s, c, tenant, !is_alert);
        acc->v[acc->n++] = b;
    }
    sub_push(b, m, n, a);
}

static void
flush(struct acc *acc)
{
    for (size_t i = 0; i < acc->n; i++) {
        sub_admit(acc->v[i]);
    }
    acc->n = 0;
}

/* ---- parsing off the loop ----
 *
 * The loop only reads and frames: the messages of one read are copied into a parse job
 * and their headers and PAN-OS records are parsed on the parser thread (the one thread of
 * s->parse, so jobs finish in the order they were read and a connection's records keep
 * their order). Back on the loop, each record goes into its tenant's batch as before. A
 * connection counts its messages as pending from the moment they are framed, so the
 * back-pressure bound holds for what waits for the parser too. When the parser's queue
 * is full, the job is parsed on the loop at once. */

struct pmsg {
    size_t off, len;    /* in the job's bytes */
    const char *tenant; /* a listener's or a sender rule's name: lives as long as s */
    char peer[48];      /* UDP: the sender's address, for the log */
    struct alert a;     /* the parser's result */
    int dflt, ok;
    char *err; /* why it is garbled */
};

struct pjob {
    struct syslog *s;
    struct conn *c; /* NULL for UDP */
    int64_t now;
    /* UDP: what the receiver thread saw, counted and logged on the loop */
    size_t received, oversize, unknown;
    char oversize_peer[48], unknown_peer[48];
    struct buf data;
    struct pmsg *m;
    size_t n, cap;
};

static struct pjob *
pjob_new(struct syslog *s, struct conn *c, int64_t now)
{
    struct pjob *j = xcalloc(1, sizeof(*j));

    j->s = s;
    j->c = c;
    j->now = now;
    buf_init(&j->data, 0);
    return j;
}

static void
pjob_add(struct pjob *j, const char *tenant, const char *peer, const char *m, size_t n)
{
    struct pmsg *pm;

    if (j->n == j->cap) {
        j->cap = j->cap ? j->cap * 2 : 256;
        j->m = xrealloc(j->m, j->cap * sizeof(*j->m));
    }
    pm = &j->m[j->n++];
    memset(pm, 0, sizeof(*pm));
    pm->off = j->data.len;
    pm->len = n;
    pm->tenant = tenant;
    snprintf(pm->peer, sizeof(pm->peer), "%s", peer);
    (void)!buf_append(&j->data, m, n); /* no cap: bounded by the read */
    if (j->c != NULL) {
        j->c->pending++;
    }
}

/* The parser thread: touches only the job and the (read-only) settings. */
static void
pjob_parse(void *arg)
{
    struct pjob *j = arg;

    for (size_t i = 0; i < j->n; i++) {
        struct pmsg *pm = &j->m[i];

        pm->ok = normalize_one(j->data.data + pm->off, pm->len, j->s->conf.offset_min, j->now,
                               &pm->a, &pm->dflt, &pm->err) == 0;
        if (pm->ok && !pm->dflt) { /* most likely an event: its row made here too */
            store_event_prepare(&pm->a);
        }
    }
}

static void
pjob_free(struct pjob *j)
{
    for (size_t i = 0; i < j->n; i++) {
        if (j->m[i].ok) {
            alert_free(&j->m[i].a);
        }
        free(j->m[i].err);
    }
    free(j->m);
    buf_free(&j->data);
    free(j);
}

/* Back on the loop: the parsed records into their batches, then admitted. */
static void
pjob_done(void *arg, int cancelled)
{
    struct pjob *j = arg;
    struct syslog *s = j->s;
    struct conn *c = j->c;
    struct acc acc = { { 0 }, 0 };
    size_t dropped = 0;

    s->st.messages[P_UDP] += j->received;
    s->st.oversize += j->oversize;
    s->st.unknown_sender += j->unknown;
    if (j->oversize > 0) {
        note_n(s, "oversize", j->oversize_peer, "datagram longer than the message limit",
               j->oversize);
    }
    if (j->unknown > 0) {
        note_n(s, "unknown_sender", j->unknown_peer, "no tenant for this sender address",
               j->unknown);
    }
    for (size_t i = 0; i < j->n; i++) {
        struct pmsg *pm = &j->m[i];

        if (cancelled || s->stopping) {
            dropped++;
        } else if (!pm->ok) {
            s->st.garbled++;
            note(s, "garbled", c != NULL ? c->peer_text : pm->peer, pm->err);
            dropped++;
        } else {
            place(s, c, pm->tenant, j->data.data + pm->off, pm->len, &pm->a, pm->dflt, &acc);
            pm->ok = 0; /* taken */
        }
    }
    if (cancelled || s->stopping) {
        s->st.lost += dropped;
    }
    flush(&acc);
    if (c != NULL) {
        c->pending -= dropped;
        if (!s->stopping) {
            if (c->paused && !c->closed && c->pending < SYSLOG_PENDING_MAX / 2) {
                c->paused = 0;
                conn_resume(c);
            }
            conn_maybe_free(c);
        }
    }
    pjob_free(j);
}

static void
pjob_submit(struct pjob *j)
{
    if (j->n == 0) {
        pjob_free(j);
        return;
    }
    if (j->s->parse == NULL || work_submit(j->s->parse, pjob_parse, pjob_done, j) == -1) {
        pjob_parse(j); /* no thread, or its queue is full: parse here */
        pjob_done(j, 0);
    }
}

/* ---- TCP and TLS ---- */

static void
conn_close(struct conn *c)
{
    if (c->bev != NULL) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    if (c->ev != NULL) {
        event_free(c->ev);
        c->ev = NULL;
        evutil_closesocket(c->fd);
    }
    free(c->in);
    c->in = NULL;
    c->inlen = c->incap = 0;
    if (!c->closed) {
        c->closed = 1;
        c->s->nconns--;
    }
    conn_maybe_free(c);
}

static void
conn_maybe_free(struct conn *c)
{
    struct syslog *s = c->s;

    if (!c->closed || c->pending > 0) {
        return;
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        s->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    free(c);
}

/* Frame and handle p[0..len): returns the bytes used; *fatal when the stream cannot be
 * framed any more. Stops early while the connection has too much waiting for the store. */
static size_t
consume(struct conn *c, const char *p, size_t len, int *fatal)
{
    struct syslog *s = c->s;
    struct pjob *j = pjob_new(s, c, util_now_ms());
    size_t pos = 0;

    buf_reserve(&j->data, len); /* the read's messages, copied once */
    *fatal = 0;
    while (pos < len && c->pending < SYSLOG_PENDING_MAX) {
        size_t used, off, mlen;
        const char *why;
        enum syslog_frame_rc rc =
            syslog_frame(&c->fr, p + pos, len - pos, &used, &off, &mlen, &why);

        if (rc == SYSLOG_FRAME_MORE) {
            break;
        }
        if (rc == SYSLOG_FRAME_OK) {
            s->st.messages[c->l->proto]++;
            pjob_add(j, c->tenant, "", p + pos + off, mlen);
        } else if (rc == SYSLOG_FRAME_SKIPPED) {
            if (why != NULL) {
                s->st.oversize++;
                note(s, "oversize", c->peer_text, why);
            }
        } else {
            s->st.framing_errors++;
            note(s, "framing", c->peer_text, why);
            *fatal = 1;
        }
        pos += used;
        if (*fatal) {
            break;
        }
    }
    pjob_submit(j);
    return pos;
}

/* The peer closed: a last newline-framed message may lack its LF. */
static void
consume_last(struct conn *c, const char *p, size_t len)
{
    if (len > 0 && len <= c->fr.max && c->fr.mode == SYSLOG_FRAMING_LF && !c->fr.discarding &&
        c->pending < SYSLOG_PENDING_MAX) {
        struct pjob *j = pjob_new(c->s, c, util_now_ms());

        c->s->st.messages[c->l->proto]++;
        pjob_add(j, c->tenant, "", p, len);
        pjob_submit(j);
    }
}

static void
conn_pause(struct conn *c)
{
    c->paused = 1; /* TCP pushes back on the sender */
    if (c->bev != NULL) {
        bufferevent_disable(c->bev, EV_READ);
    } else if (c->ev != NULL) {
        event_del(c->ev);
    }
}

static void
conn_resume(struct conn *c)
{
    if (c->bev != NULL) {
        bufferevent_enable(c->bev, EV_READ);
    } else if (c->ev != NULL) {
        struct timeval idle;

        idle.tv_sec = (time_t)c->s->conf.idle_timeout;
        idle.tv_usec = (suseconds_t)((c->s->conf.idle_timeout - (double)idle.tv_sec) * 1e6);
        event_add(c->ev, &idle);
        event_active(c->ev, EV_READ, 0); /* bytes may be waiting in c->in already */
    }
}

/* Plain TCP: read what the socket holds (up to SYSLOG_READ_MAX at a time, so that what
 * arrived during a commit is taken in one go and stored by the next), then frame it. */
static void
on_tcp(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    size_t limit = c->s->conf.max_message + SYSLOG_READ_MAX, used;
    int eof = 0, err = 0, fatal;

    if (what & EV_TIMEOUT) {
        c->s->st.idle_closed++;
        conn_close(c);
        return;
    }
    while (c->inlen < limit) {
        ssize_t n;

        if (c->incap - c->inlen < 16384) {
            c->incap = c->incap ? c->incap * 2 : 65536;
            c->incap = c->incap > limit ? limit : c->incap;
            c->in = xrealloc(c->in, c->incap);
        }
        n = read(fd, c->in + c->inlen, c->incap - c->inlen);
        if (n > 0) {
            c->inlen += (size_t)n;
            continue;
        }
        if (n == 0) {
            eof = 1;
        } else if (errno == EINTR) {
            continue;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
            err = 1;
        }
        break;
    }
    used = consume(c, c->in, c->inlen, &fatal);
    memmove(c->in, c->in + used, c->inlen - used);
    c->inlen -= used;
    if (eof && !fatal && c->pending < SYSLOG_PENDING_MAX) {
        consume_last(c, c->in, c->inlen);
        c->inlen = 0;
    }
    if (fatal || err || (eof && c->inlen == 0)) {
        conn_close(c);
        return;
    }
    if (c->pending >= SYSLOG_PENDING_MAX && !c->paused) {
        conn_pause(c);
    }
}

/* TLS, through bufferevent_openssl. */
static void
on_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in), used;
    const char *p = (const char *)evbuffer_pullup(in, -1);
    int fatal;

    used = consume(c, p, len, &fatal);
    evbuffer_drain(in, used);
    if (fatal) {
        conn_close(c);
        return;
    }
    if (c->pending >= SYSLOG_PENDING_MAX && !c->paused) {
        conn_pause(c);
    }
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;

    (void)bev;
    if (what & BEV_EVENT_TIMEOUT) {
        c->s->st.idle_closed++;
    }
    if ((what & BEV_EVENT_ERROR) && bufferevent_get_openssl_error(c->bev) != 0) {
        char why[256];
        unsigned long e = bufferevent_get_openssl_error(c->bev);

        while (bufferevent_get_openssl_error(c->bev) != 0) { /* take them all */
        }
        ERR_error_string_n(e, why, sizeof(why));
        c->s->st.tls_errors++;
        note(c->s, "tls_failed", c->peer_text, why);
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        if (what & BEV_EVENT_EOF) {
            struct evbuffer *in = bufferevent_get_input(c->bev);

            consume_last(c, (const char *)evbuffer_pullup(in, -1), evbuffer_get_length(in));
        }
        conn_close(c);
    }
}

static void
on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    struct listener *l = arg;
    struct syslog *s = l->s;
    struct conn *c;
    const char *tenant;
    size_t same = 0;
    struct timeval idle;

    (void)lev;
    c = xcalloc(1, sizeof(*c));
    memcpy(&c->peer, sa, (size_t)salen < sizeof(c->peer) ? (size_t)salen : sizeof(c->peer));
    peer_text(&c->peer, c->peer_text, sizeof(c->peer_text));
    for (struct conn *o = s->conns; o != NULL; o = o->next) {
        same += !o->closed && strcmp(o->peer_text, c->peer_text) == 0;
    }
    tenant = tenant_of(s, l, &c->peer);
    if (tenant == NULL || s->draining || s->nconns >= (size_t)s->conf.max_conns ||
        same >= (size_t)s->conf.max_conns_per_peer) {
        if (tenant == NULL) {
            s->st.unknown_sender++;
            note(s, "unknown_sender", c->peer_text, "no tenant for this sender address");
        } else {
            s->st.conns_refused++;
            note(s, "refused", c->peer_text,
                 same >= (size_t)s->conf.max_conns_per_peer ? "max_conns_per_peer" : "max_conns");
        }
        evutil_closesocket(fd);
        free(c);
        return;
    }
    c->s = s;
    c->l = l;
    snprintf(c->tenant, sizeof(c->tenant), "%s", tenant);
    c->fr.max = s->conf.max_message;
    c->fd = fd;
    idle.tv_sec = (time_t)s->conf.idle_timeout;
    idle.tv_usec = (suseconds_t)((s->conf.idle_timeout - (double)idle.tv_sec) * 1e6);
    if (l->proto == P_TLS) {
        SSL *ssl = SSL_new(s->ssl);

        c->bev = ssl != NULL ? bufferevent_openssl_socket_new(loop_base(), fd, ssl,
                                                              BUFFEREVENT_SSL_ACCEPTING,
                                                              BEV_OPT_CLOSE_ON_FREE)
                             : NULL;
        if (c->bev == NULL) {
            evutil_closesocket(fd);
            free(c);
            return;
        }
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        bufferevent_set_timeouts(c->bev, &idle, NULL);
        bufferevent_set_max_single_read(c->bev, SYSLOG_READ_MAX);
        bufferevent_setwatermark(c->bev, EV_READ, 0, s->conf.max_message + SYSLOG_READ_MAX);
        bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
        bufferevent_enable(c->bev, EV_READ);
    } else {
        evutil_make_socket_nonblocking(fd);
        c->ev = event_new(loop_base(), fd, EV_READ | EV_PERSIST, on_tcp, c);
        event_add(c->ev, &idle);
    }
    c->next = s->conns;
    if (s->conns != NULL) {
        s->conns->prev = c;
    }
    s->conns = c;
    s->nconns++;
}

/* ---- UDP ---- */

/* The receiver thread of a UDP listener. The kernel keeps only what fits its receive
 * buffer (syslog.udp_buffer); the loop stops to commit, and a commit may take a second
 * on a busy disk. So each UDP listener has a thread of its own that only drains the
 * socket: datagrams are copied into parse jobs (a job is handed to the parser thread
 * when it holds SYSLOG_UDP_JOB datagrams or its first is SYSLOG_UDP_JOB_MS old), and
 * their counts and log lines go with the job to the loop. Jobs waiting for the loop are
 * held in memory; when the parser's queue is full the receiver waits, and the kernel's
 * buffer takes what comes meanwhile. It touches the socket, its buffers, the job it
 * fills and the settings, which are fixed while the source runs. */

/* Hand j to the parser thread, waiting while its queue is full. */
static void
udp_hand(struct listener *l, struct pjob *j)
{
    while (work_submit(l->s->parse, pjob_parse, pjob_done, j) == -1) {
        struct timespec ts = { 0, 1000000 };

        nanosleep(&ts, NULL);
    }
}

static void *
udp_main(void *arg)
{
    struct listener *l = arg;
    struct syslog *s = l->s;
    struct mmsghdr mm[SYSLOG_UDP_BATCH];
    struct iovec iov[SYSLOG_UDP_BATCH];
    struct sockaddr_storage from[SYSLOG_UDP_BATCH];
    char ctl[SYSLOG_UDP_BATCH][CMSG_SPACE(sizeof(uint32_t))];
    struct pjob *j = NULL;
    int64_t first_us = 0;

    for (;;) {
        int quit = __atomic_load_n(&l->rx_quit, __ATOMIC_ACQUIRE);
        int timeout = SYSLOG_UDP_POLL_MS, got;
        struct pollfd pfd = { .fd = l->fd, .events = POLLIN };

        if (j != NULL) {
            int64_t left = first_us + SYSLOG_UDP_JOB_MS * 1000 - util_mono_us();

            if (quit || left <= 0 || j->n >= SYSLOG_UDP_JOB) {
                udp_hand(l, j);
                j = NULL;
                continue;
            }
            timeout = (int)(left / 1000) + 1;
        }
        if (quit) {
            break;
        }
        if (poll(&pfd, 1, timeout) <= 0) {
            continue;
        }
        for (int i = 0; i < SYSLOG_UDP_BATCH; i++) {
            iov[i].iov_base = l->dgrams + (size_t)i * SYSLOG_UDP_DGRAM_MAX;
            iov[i].iov_len = SYSLOG_UDP_DGRAM_MAX;
            memset(&mm[i], 0, sizeof(mm[i]));
            mm[i].msg_hdr.msg_iov = &iov[i];
            mm[i].msg_hdr.msg_iovlen = 1;
            mm[i].msg_hdr.msg_name = &from[i];
            mm[i].msg_hdr.msg_namelen = sizeof(from[i]);
            mm[i].msg_hdr.msg_control = ctl[i];
            mm[i].msg_hdr.msg_controllen = sizeof(ctl[i]);
        }
        got = recvmmsg(l->fd, mm, SYSLOG_UDP_BATCH, MSG_DONTWAIT, NULL);
        if (got <= 0) {
            continue;
        }
        if (j == NULL) {
            j = pjob_new(s, NULL, util_now_ms());
            first_us = util_mono_us();
        }
        for (int i = 0; i < got; i++) {
            const char *m = iov[i].iov_base, *tenant;
            size_t n = mm[i].msg_len;
            char peer[48];

            for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mm[i].msg_hdr); cm != NULL;
                 cm = CMSG_NXTHDR(&mm[i].msg_hdr, cm)) {
                if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_RXQ_OVFL) {
                    uint32_t v;

                    memcpy(&v, CMSG_DATA(cm), sizeof(v));
                    __atomic_store_n(&l->ovfl, v, __ATOMIC_RELAXED);
                }
            }
            j->received++;
            while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == '\0' || m[n - 1] == '\r')) {
                n--;
            }
            peer_text(&from[i], peer, sizeof(peer));
            if (n > s->conf.max_message || (mm[i].msg_hdr.msg_flags & MSG_TRUNC)) {
                if (j->oversize++ == 0) {
                    snprintf(j->oversize_peer, sizeof(j->oversize_peer), "%s", peer);
                }
                continue;
            }
            if ((tenant = tenant_of(s, l, &from[i])) == NULL) {
                if (j->unknown++ == 0) {
                    snprintf(j->unknown_peer, sizeof(j->unknown_peer), "%s", peer);
                }
                continue;
            }
            pjob_add(j, tenant, peer, m, n);
        }
    }
    return NULL;
}

/* Stop and join l's receiver: it hands its last job to the parser first. */
static void
udp_join(struct listener *l)
{
    if (l->rx_running) {
        __atomic_store_n(&l->rx_quit, 1, __ATOMIC_RELEASE);
        pthread_join(l->rx, NULL);
        l->rx_running = 0;
    }
}

/* ---- the source ---- */

static void
syslog_metrics(struct buf *b, void *arg)
{
    struct syslog *s = arg;
    unsigned long long drops = 0;

    for (size_t i = 0; i < s->nls; i++) {
        struct listener *l = &s->ls[i];
        uint32_t mem[SK_MEMINFO_VARS];
        socklen_t ml = sizeof(mem);

        /* The socket's drop counter as it is now (a datagram's SO_RXQ_OVFL only tells
         * the drops before it arrived: drops after the last one read would not show). */
        if (l->proto == P_UDP && __atomic_load_n(&l->ovfl, __ATOMIC_RELAXED) > l->drops) {
            l->drops = __atomic_load_n(&l->ovfl, __ATOMIC_RELAXED);
        }
        if (l->proto == P_UDP && l->fd >= 0 &&
            getsockopt(l->fd, SOL_SOCKET, SO_MEMINFO, mem, &ml) == 0 &&
            ml > SK_MEMINFO_DROPS * sizeof(uint32_t) && mem[SK_MEMINFO_DROPS] > l->drops) {
            l->drops = mem[SK_MEMINFO_DROPS];
        }
        drops += l->drops;
    }
    for (int i = 0; i < 3; i++) {
        metrics_labelled(b, "kagari_syslog_messages_total", "transport", proto_names[i],
                         s->st.messages[i], i == 0);
    }
    metrics_counter(b, "kagari_syslog_alerts_total", "records stored as alerts", s->st.alerts);
    metrics_counter(b, "kagari_syslog_events_total", "records stored as events", s->st.events);
    metrics_counter(b, "kagari_syslog_garbled_total", "messages that are not a known record",
                    s->st.garbled);
    metrics_counter(b, "kagari_syslog_oversize_total", "messages over syslog.max_message",
                    s->st.oversize);
    metrics_counter(b, "kagari_syslog_framing_errors_total",
                    "connections closed for a broken octet count", s->st.framing_errors);
    metrics_counter(b, "kagari_syslog_unknown_sender_total",
                    "messages and connections from senders of no tenant", s->st.unknown_sender);
    metrics_counter(b, "kagari_syslog_connections_refused_total", NULL, s->st.conns_refused);
    metrics_counter(b, "kagari_syslog_idle_closed_total", NULL, s->st.idle_closed);
    metrics_counter(b, "kagari_syslog_tls_errors_total",
                    "TLS connections that failed (handshake, a certificate refused)",
                    s->st.tls_errors);
    metrics_counter(b, "kagari_syslog_store_retries_total", NULL, s->st.retries);
    metrics_counter(b, "kagari_syslog_lost_total", "messages received but not stored", s->st.lost);
    metrics_counter(b, "kagari_syslog_udp_kernel_drops_total",
                    "datagrams the kernel dropped (receive buffer full)", drops);
    metrics_gauge(b, "kagari_syslog_connections", NULL, (double)s->nconns);
}

static void syslog_stop(void *state);

static int
open_udp(struct listener *l, const struct sockaddr_storage *ss, socklen_t sl, size_t rcvbuf,
         char **errp)
{
    int one = 1, size = (int)rcvbuf;

    l->fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0) {
        return kg_err(errp, "udp socket: %s", strerror(errno));
    }
    (void)setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(l->fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) == -1) {
        (void)setsockopt(l->fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    }
    (void)setsockopt(l->fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one));
    if (bind(l->fd, (const struct sockaddr *)ss, sl) == -1) {
        return kg_err(errp, "cannot bind: %s", strerror(errno));
    }
    l->dgrams = xmalloc((size_t)SYSLOG_UDP_BATCH * SYSLOG_UDP_DGRAM_MAX);
    return 0; /* read by its receiver thread, started with the parser (syslog_start) */
}

static int
syslog_start(const struct config *cfg, void **state, char **errp)
{
    const struct syslog_conf *sc = config_block(cfg, &syslog_section);
    struct syslog *s;

    *state = NULL;
    if (sc == NULL || sc->nlisten == 0) {
        return 0;
    }
    s = xcalloc(1, sizeof(*s));
    s->conf = *sc;
    s->cfg = sc;
    s->senders = xcalloc(sc->nsenders + 1, sizeof(*s->senders));
    for (size_t i = 0; i < sc->nsenders; i++) {
        if (sender_parse(sc->senders[i], &s->senders[i], errp) == -1) {
            goto fail;
        }
    }
    s->nsenders = sc->nsenders;
    s->ls = xcalloc(sc->nlisten, sizeof(*s->ls));
    for (size_t i = 0; i < sc->nlisten; i++) {
        struct listener *l = &s->ls[s->nls];
        struct listen_spec spec;
        struct sockaddr_storage ss;
        socklen_t sl = 0, gl = sizeof(ss);
        char *err = NULL;

        if (listen_parse(sc->listen[i], &spec, errp) == -1 ||
            util_parse_listen(spec.addr, &ss, &sl, errp) == -1) {
            goto fail;
        }
        s->nls++;
        l->s = s;
        l->fd = -1;
        l->proto = spec.proto;
        snprintf(l->tenant, sizeof(l->tenant), "%s", spec.tenant);
        if (spec.proto == P_TLS && s->ssl == NULL) {
            if ((s->ssl = tls_server_context(sc->tls_cert, sc->tls_key, errp)) == NULL) {
                goto fail;
            }
            /* Mutual TLS (RFC 5425 section 5): only senders with a certificate of this CA. */
            if (sc->tls_ca != NULL) {
                if (SSL_CTX_load_verify_locations(s->ssl, sc->tls_ca, NULL) != 1) {
                    kg_err(errp, "syslog.tls_ca: %s: cannot read the CA certificates", sc->tls_ca);
                    goto fail;
                }
                SSL_CTX_set_verify(s->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
            }
        }
        if (spec.proto == P_UDP) {
            if (open_udp(l, &ss, sl, sc->udp_buffer, &err) == -1) {
                kg_err(errp, "syslog.listen: %s: %s", sc->listen[i], err);
                free(err);
                goto fail;
            }
            (void)getsockname(l->fd, (struct sockaddr *)&ss, &gl);
        } else {
            l->lev = evconnlistener_new_bind(loop_base(), on_accept, l,
                                             LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                                 LEV_OPT_CLOSE_ON_EXEC,
                                             128, (struct sockaddr *)&ss, (int)sl);
            if (l->lev == NULL) {
                kg_err(errp, "syslog.listen: %s: cannot listen: %s", sc->listen[i],
                       strerror(errno));
                goto fail;
            }
            (void)getsockname(evconnlistener_get_fd(l->lev), (struct sockaddr *)&ss, &gl);
        }
        l->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
        util_own_port_add(l->port);
    }
    if ((s->parse = work_new(loop_base(), 1, SYSLOG_PARSE_QUEUE, errp)) == NULL) {
        goto fail;
    }
    for (size_t i = 0; i < s->nls; i++) {
        struct listener *l = &s->ls[i];

        if (l->proto == P_UDP) {
            if (pthread_create(&l->rx, NULL, udp_main, l) != 0) {
                kg_err(errp, "syslog.listen: %s: cannot start the receiver thread", sc->listen[i]);
                goto fail;
            }
            l->rx_running = 1;
        }
    }
    metrics_add(syslog_metrics, s);
    *state = s;
    return 0;
fail:
    syslog_stop(s);
    return -1;
}

static void
syslog_drain(void *state)
{
    struct syslog *s = state;

    s->draining = 1;
    for (size_t i = 0; i < s->nls; i++) {
        if (s->ls[i].lev != NULL) {
            evconnlistener_disable(s->ls[i].lev);
        }
        udp_join(&s->ls[i]); /* what it read goes to the parser, then to the store */
    }
}

static void
syslog_stop(void *state)
{
    struct syslog *s = state;

    for (size_t i = 0; i < s->nls; i++) {
        udp_join(&s->ls[i]); /* before the parser goes: it hands its last job to it */
    }
    s->stopping = 1;
    work_free(s->parse); /* the reads still being parsed: counted lost */
    s->parse = NULL;
    metrics_remove(syslog_metrics, s);
    while (s->waiting != NULL) { /* retries that will never come */
        struct sub *b = s->waiting;

        s->waiting = b->next;
        s->st.lost += b->nmsgs;
        log_err("syslog.not_stored tenant=%s n=%zu status=shutdown", b->tenant, b->nmsgs);
        b->c = NULL;
        sub_free(b);
    }
    while (s->conns != NULL) { /* admit_shutdown has answered every batch */
        struct conn *c = s->conns;

        s->conns = c->next;
        if (c->bev != NULL) {
            bufferevent_free(c->bev);
        }
        if (c->ev != NULL) {
            event_free(c->ev);
            evutil_closesocket(c->fd);
        }
        free(c->in);
        free(c);
    }
    for (size_t i = 0; i < s->nls; i++) {
        struct listener *l = &s->ls[i];

        if (l->port > 0) {
            util_own_port_del(l->port);
        }
        if (l->lev != NULL) {
            evconnlistener_free(l->lev);
        }
        if (l->fd >= 0) {
            close(l->fd);
        }
        free(l->dgrams);
    }
    free(s->ls);
    free(s->senders);
    if (s->ssl != NULL) {
        SSL_CTX_free(s->ssl);
    }
    free(s);
}

static void
syslog_describe(void *state, struct buf *b)
{
    struct syslog *s = state;
    int seen[3] = { 0, 0, 0 };

    for (size_t i = 0; i < s->nls; i++) {
        if (!seen[s->ls[i].proto]) {
            seen[s->ls[i].proto] = 1;
            (void)!buf_printf(b, " syslog_%s=%d", proto_names[s->ls[i].proto], s->ls[i].port);
        }
    }
}

/* The descriptor's normalizer: one syslog message into one alert (the UTC offset of
 * the firewall's own times is taken as UTC here; the listeners use syslog.utc_offset). */
static int
syslog_normalize(const char *rec, size_t len, const char *hint, int64_t received_ms,
                 struct alert **alerts, size_t *n, char **errp)
{
    struct alert a;
    int dflt;

    (void)hint;
    if (normalize_one(rec, len, 0, received_ms, &a, &dflt, errp) == -1) {
        return -1;
    }
    *alerts = xmalloc(sizeof(**alerts));
    **alerts = a;
    *n = 1;
    return 0;
}

const struct source syslog_source = {
    "syslog",
    "syslog over UDP, TCP and TLS; PAN-OS records",
    &syslog_section,
    syslog_start,
    syslog_drain,
    syslog_stop,
    syslog_describe,
    syslog_normalize,
    NULL, /* reload: its settings apply at the next start */
};
