/* http.c: a small HTTP/1.1 server on libevent bufferevents (TLS through bufferevent_openssl),
 * with strict incremental request parsing (CRLF line ends only), one timer per connection
 * re-armed per phase, caps on head, body and connections (in all and per client address),
 * keep-alive and in-order pipelining. */
#include "engine/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <openssl/err.h>

#include "engine/log.h"

#define HTTP_MAX_HEADERS 100         /* header fields per request; over: 431 */
#define HTTP_CHUNK_LINE_MAX 1024     /* a chunk-size line with its extensions */
#define HTTP_LINGER_SECS 2.0         /* discard input this long after the last reply */
#define HTTP_REJECT_MAX 64           /* over-cap connections being sent their 503 at once */
#define HTTP_ACCEPT_RETRY_SECS 0.5   /* pause after accept() ran out of descriptors */
#define HTTP_READ_SLACK (64 * 1024)  /* read-ahead beyond max_header_bytes (pipelining) */
#define HTTP_REPLY_HEADERS_MAX 65536 /* bytes of handler-added response headers */
#define LINE_BARE_LF (-2)            /* conn_take_line: a line ended by LF without CR */
#define HTTP_PEER_BUCKETS 256        /* hash buckets of the per-peer connection counts */
#define HTTP_RETRY_AFTER "1"         /* seconds a refused connection is told to wait */

/* What a connection is doing; each phase has its own timeout (see conn_enter). */
enum conn_state {
    CONN_IDLE,     /* keep-alive, between requests: idle_timeout, then a quiet close */
    CONN_HEAD,     /* reading a request head: header_timeout, then 408 */
    CONN_BODY,     /* reading the body: body_timeout, then 408 */
    CONN_HANDLING, /* handler called, waiting for http_reply: no timer */
    CONN_WRITING,  /* sending a reply on a connection that stays open: write_timeout */
    CONN_CLOSING,  /* sending the last reply; input is discarded: write_timeout */
    CONN_LINGER,   /* last reply sent, write side shut; discard input until EOF */
};

enum body_mode { BODY_NONE, BODY_LENGTH, BODY_CHUNKED };
enum chunk_state { CHUNK_SIZE, CHUNK_DATA, CHUNK_DATA_END, CHUNK_TRAILER };

/* Open connections from one client address (only while it has some). */
struct http_peer {
    struct http_peer *next; /* same bucket */
    int nconns;
    char addr[INET6_ADDRSTRLEN];
};

struct http_listener {
    struct http_server *srv;
    struct evconnlistener *lev;
    struct event *retry; /* re-enables accepting after EMFILE and friends */
    int port;
};

struct http_conn {
    struct http_server *srv;
    struct http_conn *prev, *next; /* srv->conns */
    struct bufferevent *bev;
    struct event *timer; /* the one timer, re-armed at each phase change */
    enum conn_state state;
    int rejected;  /* over the connection cap: gets a 503 and nothing else */
    int read_eof;  /* the client shut its side; finish the pending reply, then close */
    int read_held; /* reading stopped: pipelined bytes fill the read-ahead (conn_process) */
    int got_bytes; /* bytes of the current request seen (408 rather than a quiet close) */
    /* Head scanning over the input buffer, resumed where the last read stopped. */
    size_t scan;
    size_t line_start;
    int line1_ok;
    /* Body decoding. */
    enum body_mode body_mode;
    unsigned long long body_left; /* bytes left of the body or of the current chunk */
    enum chunk_state chunk;
    size_t trailer_bytes;
    struct http_request *req; /* from a complete head until http_reply */
    char peer[INET6_ADDRSTRLEN];
};

struct http_request {
    struct http_server *srv;
    struct http_conn *conn;           /* NULL once orphaned (connection gone) */
    struct http_request *prev, *next; /* srv->orphans while orphaned */
    struct http_head head;
    char *path;  /* decoded */
    char *query; /* raw, NULL when the target has no '?' */
    struct buf body;
    struct buf reply_headers; /* "Name: value\r\n" lines from http_reply_header */
    int params_done;
    size_t nparams;
    char **pnames;
    char **pvalues;
    char peer[INET6_ADDRSTRLEN];
    char id[24];                    /* X-Request-Id */
    char client[64];                /* http_request_set_client; "" when unknown */
    const char *err_code, *err_msg; /* http_reply_error's, for on_reject */
};

struct http_server {
    struct event_base *base;
    struct http_config cfg;
    http_handler handler;
    void *arg;
    struct http_listener **listeners;
    size_t nlisteners;
    int accepting;
    int freeing; /* http_server_free: requests die with their connections */
    int nconns;
    int nrejecting;
    unsigned long long refused; /* connections refused by a cap (503, or dropped) */
    struct http_peer *peers[HTTP_PEER_BUCKETS];
    struct http_conn *conns;
    struct http_request *orphans;
    uint32_t id_prefix;         /* random per server: ids differ across restarts */
    unsigned long long next_id; /* request counter */
};

static const char *const conn_state_names[] = { "idle",    "head",    "body",  "handling",
                                                "writing", "closing", "linger" };

/* ---- small helpers ---- */

static int
is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) {
        return 1;
    }
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* A field-value byte: visible ASCII, obs-text, space or tab; no other controls. */
static int
is_value_char(unsigned char ch)
{
    return ch == '\t' || (ch >= 0x20 && ch != 0x7f);
}

static int
hex_value(unsigned char ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

/* Decode %XX escapes of s[0..n) into a new string; with plus set, '+' becomes a space
 * (application/x-www-form-urlencoded). Returns NULL on a malformed escape or on %00,
 * which would cut the string short for every C caller downstream. */
char *
http_url_decode(const char *s, size_t n, int plus)
{
    char *out = xmalloc(n + 1);
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch == '%') {
            int hi = n - i >= 3 ? hex_value((unsigned char)s[i + 1]) : -1;
            int lo = n - i >= 3 ? hex_value((unsigned char)s[i + 2]) : -1;

            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(out);
                return NULL;
            }
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (ch == '+' && plus) {
            out[o++] = ' ';
        } else {
            out[o++] = (char)ch;
        }
    }
    out[o] = '\0';
    return out;
}

static const char *
http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Unknown";
    }
}

/* An IMF-fixdate for the Date header, independent of the locale. */
static void
http_date(char *out, size_t outsz)
{
    static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    time_t t = time(NULL);
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(out, outsz, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday % 7], tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Numeric address of a peer; IPv4-mapped IPv6 addresses are shown as plain IPv4. */
static void
peer_format(const struct sockaddr *sa, char *out, size_t outsz)
{
    if (sa == NULL) {
        snprintf(out, outsz, "unknown");
        return;
    }
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;

        if (inet_ntop(AF_INET, &sin->sin_addr, out, (socklen_t)outsz) != NULL) {
            return;
        }
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;

        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            if (inet_ntop(AF_INET, &sin6->sin6_addr.s6_addr[12], out, (socklen_t)outsz) != NULL) {
                return;
            }
        } else if (inet_ntop(AF_INET6, &sin6->sin6_addr, out, (socklen_t)outsz) != NULL) {
            return;
        }
    }
    snprintf(out, outsz, "unknown");
}

static struct timeval
secs_to_tv(double secs)
{
    struct timeval tv;

    tv.tv_sec = (time_t)secs;
    tv.tv_usec = (suseconds_t)((secs - (double)tv.tv_sec) * 1e6);
    if (tv.tv_usec < 0) {
        tv.tv_usec = 0;
    }
    if (tv.tv_usec >= 1000000) {
        tv.tv_usec = 999999;
    }
    return tv;
}

/* ---- the head parser ---- */

static void
head_init(struct http_head *h)
{
    memset(h, 0, sizeof(*h));
    h->content_length = -1;
}

void
http_head_free(struct http_head *h)
{
    if (h == NULL) {
        return;
    }
    free(h->target);
    for (size_t i = 0; i < h->nheaders; i++) {
        free(h->names[i]);
        free(h->values[i]);
    }
    free(h->names);
    free(h->values);
    head_init(h);
}

/* Parse "METHOD /target HTTP/1.x" from p[0..n) (n excludes the CRLF). Fills method,
 * target (malloc'd) and minor. */
static int
parse_request_line(const char *p, size_t n, struct http_head *h, char **errp)
{
    size_t i = 0, t, tlen;

    while (i < n && is_tchar((unsigned char)p[i])) {
        i++;
    }
    if (i == 0 || i >= n || p[i] != ' ') {
        return kg_err(errp, "malformed method");
    }
    if (i >= sizeof(h->method)) {
        return kg_err(errp, "method too long");
    }
    memcpy(h->method, p, i);
    h->method[i] = '\0';
    t = ++i;
    while (i < n && (unsigned char)p[i] > 0x20 && (unsigned char)p[i] < 0x7f) {
        i++;
    }
    if (i == t || p[t] != '/') {
        return kg_err(errp, "request target must start with /");
    }
    if (i >= n || p[i] != ' ') {
        return kg_err(errp, "malformed request target");
    }
    tlen = i - t;
    i++;
    if (n - i != 8 || memcmp(p + i, "HTTP/1.", 7) != 0 || (p[i + 7] != '0' && p[i + 7] != '1')) {
        return kg_err(errp, "unsupported HTTP version");
    }
    h->minor = p[i + 7] - '0';
    free(h->target);
    h->target = xstrndup(p + t, tlen);
    return 0;
}

/* Per-head facts gathered while reading the fields, checked at the end. */
struct head_scan {
    int host;
    int te;
    int conn_close;
    int conn_keep_alive;
};

/* Interpret one field that matters for framing or connection handling. */
static int
head_field(struct http_head *h, struct head_scan *hs, const char *name, const char *value,
           char **errp)
{
    if (strcasecmp(name, "Content-Length") == 0) {
        long long v = 0;
        size_t i;

        for (i = 0; value[i] != '\0'; i++) {
            if (value[i] < '0' || value[i] > '9' || i >= 18) {
                return kg_err(errp, "malformed Content-Length");
            }
            v = v * 10 + (value[i] - '0');
        }
        if (i == 0) {
            return kg_err(errp, "malformed Content-Length");
        }
        if (h->content_length >= 0 && h->content_length != v) {
            return kg_err(errp, "conflicting Content-Length");
        }
        h->content_length = v;
    } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
        if (hs->te++) {
            return kg_err(errp, "repeated Transfer-Encoding");
        }
        if (strcasecmp(value, "chunked") != 0) {
            return kg_err(errp, "unsupported Transfer-Encoding");
        }
        h->chunked = 1;
    } else if (strcasecmp(name, "Host") == 0) {
        if (hs->host++) {
            return kg_err(errp, "repeated Host");
        }
    } else if (strcasecmp(name, "Connection") == 0) {
        const char *p = value;

        while (*p != '\0') {
            size_t n;

            while (*p == ' ' || *p == '\t' || *p == ',') {
                p++;
            }
            n = strcspn(p, ", \t");
            if (n == 5 && strncasecmp(p, "close", 5) == 0) {
                hs->conn_close = 1;
            } else if (n == 10 && strncasecmp(p, "keep-alive", 10) == 0) {
                hs->conn_keep_alive = 1;
            }
            p += n;
        }
    }
    return 0;
}

/* Parse one "name: value" line p[0..n) (n excludes the CRLF) and append it. */
static int
parse_field_line(const char *p, size_t n, struct http_head *h, struct head_scan *hs, char **errp,
                 int *too_large)
{
    size_t i = 0, vs, ve;
    char *name, *value;

    if (n > 0 && (p[0] == ' ' || p[0] == '\t')) {
        return kg_err(errp, "obsolete line folding");
    }
    while (i < n && is_tchar((unsigned char)p[i])) {
        i++;
    }
    if (i == 0 || i >= n || p[i] != ':') {
        return kg_err(errp, "malformed header field name");
    }
    vs = i + 1;
    while (vs < n && (p[vs] == ' ' || p[vs] == '\t')) {
        vs++;
    }
    for (size_t k = vs; k < n; k++) {
        if (!is_value_char((unsigned char)p[k])) {
            return kg_err(errp, "bad character in header field value");
        }
    }
    ve = n;
    while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t')) {
        ve--;
    }
    if (h->nheaders >= HTTP_MAX_HEADERS) {
        *too_large = 1;
        return kg_err(errp, "too many header fields");
    }
    name = xstrndup(p, i);
    value = xstrndup(p + vs, ve - vs);
    h->names = xrealloc(h->names, (h->nheaders + 1) * sizeof(char *));
    h->values = xrealloc(h->values, (h->nheaders + 1) * sizeof(char *));
    h->names[h->nheaders] = name;
    h->values[h->nheaders] = value;
    h->nheaders++;
    return head_field(h, hs, name, value, errp);
}

/* The parser behind http_parse_head; *too_large tells a 431 from a 400. Lines are checked
 * as soon as they are complete, so garbage is refused before the head ends. Every line
 * ends with CRLF: a bare LF is refused (RFC 9112 allows a recipient to accept one, but a
 * proxy in front of us that reads the same bytes differently would see other requests
 * than we do: request smuggling). On 0 and -1 nothing stays allocated in h. */
static int
parse_head(const char *buf, size_t len, size_t max, struct http_head *h, char **errp,
           int *too_large)
{
    struct head_scan hs = { 0, 0, 0, 0 };
    size_t pos = 0, lim;
    int line = 0;

    head_init(h);
    *too_large = 0;
    if (max == 0 || max > INT_MAX) {
        max = INT_MAX;
    }
    lim = len < max ? len : max;
    for (;;) {
        const char *nl = memchr(buf + pos, '\n', lim - pos);
        size_t n, end;

        if (nl == NULL) {
            if (len >= max) {
                *too_large = 1;
                kg_err(errp, "request head larger than %zu bytes", max);
                goto fail;
            }
            http_head_free(h);
            return 0;
        }
        n = (size_t)(nl - (buf + pos));
        end = pos + n + 1;
        if (n == 0 || buf[pos + n - 1] != '\r') {
            kg_err(errp, "bare LF line ending in the request head (CRLF required)");
            goto fail;
        }
        n--; /* the CR */
        if (line == 0) {
            if (parse_request_line(buf + pos, n, h, errp) == -1) {
                goto fail;
            }
        } else if (n == 0) {
            if (h->chunked && h->content_length >= 0) {
                kg_err(errp, "both Content-Length and Transfer-Encoding");
                goto fail;
            }
            if (h->chunked && h->minor == 0) {
                kg_err(errp, "Transfer-Encoding in an HTTP/1.0 request");
                goto fail;
            }
            if (h->minor == 1 && !hs.host) {
                kg_err(errp, "missing Host");
                goto fail;
            }
            if (h->minor == 1) {
                h->keep_alive = !hs.conn_close;
            } else {
                h->keep_alive = hs.conn_keep_alive && !hs.conn_close;
            }
            return (int)end;
        } else if (parse_field_line(buf + pos, n, h, &hs, errp, too_large) == -1) {
            goto fail;
        }
        pos = end;
        line++;
    }
fail:
    http_head_free(h);
    return -1;
}

/* Parse a request head from buf[0..len): returns its length once complete (the empty line
 * included), 0 when more bytes are needed, -1 with *errp when malformed or not complete
 * within max bytes. h is always initialized; it owns allocations only after a positive
 * return, and http_head_free is safe in every case. */
int
http_parse_head(const char *buf, size_t len, size_t max, struct http_head *h, char **errp)
{
    int too_large;

    return parse_head(buf, len, max, h, errp, &too_large);
}

const char *
http_head_get(const struct http_head *h, const char *name)
{
    for (size_t i = 0; i < h->nheaders; i++) {
        if (strcasecmp(h->names[i], name) == 0) {
            return h->values[i];
        }
    }
    return NULL;
}

/* ---- requests ---- */

static void
request_free(struct http_request *req)
{
    if (req == NULL) {
        return;
    }
    http_head_free(&req->head);
    free(req->path);
    free(req->query);
    buf_free(&req->body);
    buf_free(&req->reply_headers);
    for (size_t i = 0; i < req->nparams; i++) {
        free(req->pnames[i]);
        free(req->pvalues[i]);
    }
    free(req->pnames);
    free(req->pvalues);
    free(req);
}

/* A new request id into out (24 bytes). */
static void
request_mint_id(struct http_server *srv, char *out)
{
    snprintf(out, 24, "%08x-%08llx", (unsigned)srv->id_prefix, ++srv->next_id & 0xffffffffULL);
}

/* A request for connection c; takes over the allocations of *head (which is reset). The
 * path is decoded here: NULL path means a malformed escape (the caller answers 400). */
static struct http_request *
request_new(struct http_conn *c, struct http_head *head)
{
    struct http_request *req = xcalloc(1, sizeof(*req));
    const char *q;

    req->srv = c->srv;
    req->conn = c;
    req->head = *head;
    head_init(head);
    q = strchr(req->head.target, '?');
    if (q != NULL) {
        req->path = http_url_decode(req->head.target, (size_t)(q - req->head.target), 0);
        req->query = xstrdup(q + 1);
    } else {
        req->path = http_url_decode(req->head.target, strlen(req->head.target), 0);
    }
    buf_init(&req->body, c->srv->cfg.max_body_bytes);
    buf_init(&req->reply_headers, HTTP_REPLY_HEADERS_MAX);
    memcpy(req->peer, c->peer, sizeof(req->peer));
    request_mint_id(c->srv, req->id);
    return req;
}

static void
orphan_unlink(struct http_request *req)
{
    struct http_server *srv = req->srv;

    if (req->prev != NULL) {
        req->prev->next = req->next;
    } else {
        srv->orphans = req->next;
    }
    if (req->next != NULL) {
        req->next->prev = req->prev;
    }
    req->prev = req->next = NULL;
}

/* ---- per-peer connection counts ---- */

static unsigned
peer_hash(const char *addr)
{
    unsigned h = 2166136261u; /* FNV-1a */

    for (; *addr != '\0'; addr++) {
        h = (h ^ (unsigned char)*addr) * 16777619u;
    }
    return h % HTTP_PEER_BUCKETS;
}

/* The open connections from addr. */
static int
peer_conns(const struct http_server *srv, const char *addr)
{
    for (const struct http_peer *p = srv->peers[peer_hash(addr)]; p != NULL; p = p->next) {
        if (strcmp(p->addr, addr) == 0) {
            return p->nconns;
        }
    }
    return 0;
}

/* Count one more (delta 1) or one fewer (delta -1) connection from addr. An entry lives
 * only while its address has connections, so the table holds at most max_conns. */
static void
peer_count(struct http_server *srv, const char *addr, int delta)
{
    struct http_peer **pp = &srv->peers[peer_hash(addr)];
    struct http_peer *p;

    for (; (p = *pp) != NULL; pp = &p->next) {
        if (strcmp(p->addr, addr) == 0) {
            break;
        }
    }
    if (p == NULL) {
        if (delta < 0) {
            return;
        }
        p = xcalloc(1, sizeof(*p));
        snprintf(p->addr, sizeof(p->addr), "%s", addr);
        p->next = srv->peers[peer_hash(addr)];
        srv->peers[peer_hash(addr)] = p;
        pp = &srv->peers[peer_hash(addr)];
    }
    p->nconns += delta;
    if (p->nconns <= 0) {
        *pp = p->next;
        free(p);
    }
}

/* ---- connections ---- */

/* Enter a phase and arm the connection's timer for it (per phase, never per byte, so a
 * client trickling bytes cannot extend its deadline). */
static void
conn_enter(struct http_conn *c, enum conn_state st)
{
    const struct http_config *cfg = &c->srv->cfg;
    double secs = 0;
    struct timeval tv;

    c->state = st;
    if (c->read_held && (st == CONN_IDLE || st == CONN_HEAD || st == CONN_BODY)) {
        c->read_held = 0;
        bufferevent_enable(c->bev, EV_READ);
    }
    switch (st) {
    case CONN_IDLE:
        secs = cfg->idle_timeout;
        break;
    case CONN_HEAD:
        secs = cfg->header_timeout;
        break;
    case CONN_BODY:
        secs = cfg->body_timeout;
        break;
    case CONN_HANDLING:
        secs = 0;
        break;
    case CONN_WRITING:
    case CONN_CLOSING:
        secs = cfg->write_timeout;
        break;
    case CONN_LINGER:
        secs = HTTP_LINGER_SECS;
        break;
    }
    if (secs <= 0) {
        evtimer_del(c->timer);
        return;
    }
    tv = secs_to_tv(secs);
    evtimer_add(c->timer, &tv);
}

/* Close and free a connection. A request the handler still holds is orphaned (freed by
 * its http_reply), unless the whole server is being freed. */
static void
conn_free(struct http_conn *c)
{
    struct http_server *srv = c->srv;

    if (c->req != NULL) {
        if (c->state == CONN_HANDLING && !srv->freeing) {
            struct http_request *req = c->req;

            log_debug("http.orphaned peer=%s method=%s", c->peer, req->head.method);
            req->conn = NULL;
            req->prev = NULL;
            req->next = srv->orphans;
            if (srv->orphans != NULL) {
                srv->orphans->prev = req;
            }
            srv->orphans = req;
        } else {
            request_free(c->req);
        }
        c->req = NULL;
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        srv->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    if (c->rejected) {
        srv->nrejecting--;
    } else {
        srv->nconns--;
        peer_count(srv, c->peer, -1);
    }
    event_free(c->timer);
    bufferevent_free(c->bev);
    free(c);
}

/* Queue one response. extra holds handler-added header lines (may be NULL). No body and
 * no Content-Length for 1xx, 204 and 304; head_only (HEAD requests) keeps the length but
 * sends no body. */
static void
conn_write(struct http_conn *c, int status, const char *id, const char *ctype,
           const struct buf *extra, const char *body, size_t len, int close, int ka10,
           int head_only)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int no_body = status < 200 || status == 204 || status == 304;
    char date[64];

    http_date(date, sizeof(date));
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\nX-Request-Id: %s\r\n", status,
                        http_reason(status), date, id);
    if (extra != NULL && extra->len > 0) {
        evbuffer_add(out, extra->data, extra->len);
    }
    if (ctype != NULL && !no_body) {
        evbuffer_add_printf(out, "Content-Type: %s\r\n", ctype);
    }
    if (!no_body) {
        evbuffer_add_printf(out, "Content-Length: %zu\r\n", len);
    }
    if (close) {
        evbuffer_add(out, "Connection: close\r\n", 19);
    } else if (ka10) {
        evbuffer_add(out, "Connection: keep-alive\r\n", 24);
    }
    evbuffer_add(out, "\r\n", 2);
    if (!no_body && !head_only && body != NULL && len > 0) {
        evbuffer_add(out, body, len);
    }
}

/* Send a reply on a plain connection now rather than at the loop's next wait for events:
 * a reply made late in an iteration (after a commit's sync) waited for the rest of it.
 * When all of it went, the write callback (conn_write_cb: the next request) is run from
 * the loop as if the bufferevent had written it; else the bufferevent writes the rest. */
static void
conn_flush(struct http_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    int n;

    if (c->srv->cfg.ssl_ctx != NULL || fd < 0 || evbuffer_get_length(out) == 0) {
        return;
    }
    /* The bufferevent keeps the output's start frozen but while it writes itself. */
    evbuffer_unfreeze(out, 1);
    n = evbuffer_write(out, fd);
    evbuffer_freeze(out, 1);
    if (n > 0 && evbuffer_get_length(out) == 0) {
        bufferevent_trigger(c->bev, EV_WRITE,
                            BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
    }
}

/* JSON error body {"error":code,"message":message}; the caller frees it. */
static char *
error_body(const char *code, const char *message, size_t *len)
{
    struct buf b;

    buf_init(&b, 0);
    if (buf_puts(&b, "{\"error\":") == -1 || buf_json_string(&b, code, strlen(code)) == -1 ||
        buf_puts(&b, ",\"message\":") == -1 ||
        buf_json_string(&b, message, strlen(message)) == -1 || buf_puts(&b, "}") == -1) {
        abort(); /* uncapped buffer: cannot fail */
    }
    *len = b.len;
    return buf_take(&b);
}

/* Answer with a server-generated error and close once it is sent. Only called when no
 * handler holds the request (it is not CONN_HANDLING). A 503 (a connection cap) carries
 * Retry-After. */
static void
conn_fail(struct http_conn *c, int status, const char *code, const char *message)
{
    size_t len;
    char *body = error_body(code, message, &len);
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct buf extra;
    char id[24];

    buf_init(&extra, 0);
    if (status == 503 && buf_puts(&extra, "Retry-After: " HTTP_RETRY_AFTER "\r\n") == -1) {
        abort(); /* uncapped buffer: cannot fail */
    }
    if (c->req != NULL) {
        memcpy(id, c->req->id, sizeof(id));
    } else {
        request_mint_id(c->srv, id);
    }
    if (c->srv->cfg.on_reject != NULL) {
        struct http_reject rej = { status, code, message, c->peer, id, NULL, NULL, NULL, NULL };

        if (c->req != NULL) {
            rej.method = c->req->head.method;
            rej.path = c->req->path;
            rej.req = c->req;
        }
        c->srv->cfg.on_reject(&rej, c->srv->cfg.reject_arg);
    } else if (status != 503 && status != 408) { /* those two are logged by their callers */
        log_warn("http.error peer=%s status=%d reason=%s request=%s", c->peer, status,
                 log_quote(message), id);
    }
    request_free(c->req);
    c->req = NULL;
    conn_write(c, status, id, "application/json", &extra, body, len, 1, 0, 0);
    buf_free(&extra);
    free(body);
    conn_enter(c, CONN_CLOSING);
    evbuffer_drain(in, evbuffer_get_length(in));
}

/* The last reply is out: shut our write side so the client sees the end, and keep reading
 * (and discarding) for a moment, so that bytes it is still sending do not make our
 * close() reset the connection before it has read the reply. */
static void
conn_linger(struct http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);

    if (c->read_eof) {
        conn_free(c);
        return;
    }
    if (c->srv->cfg.ssl_ctx != NULL) {
        SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

        /* Our close_notify, written straight to the socket: the output buffer is empty,
         * and reading on (to discard) stays allowed after it. Failure only means the
         * client sees a bare FIN. */
        if (ssl != NULL && SSL_is_init_finished(ssl)) {
            (void)SSL_shutdown(ssl);
        }
        ERR_clear_error();
    }
    shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    conn_enter(c, CONN_LINGER);
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent_enable(c->bev, EV_READ);
}

static void
conn_reset_request(struct http_conn *c)
{
    c->got_bytes = 0;
    c->scan = 0;
    c->line_start = 0;
    c->line1_ok = 0;
    c->body_mode = BODY_NONE;
    c->body_left = 0;
    c->chunk = CHUNK_SIZE;
    c->trailer_bytes = 0;
}

/* The request is complete: hand it to the handler. It may reply at once (we are then in
 * CONN_WRITING on return) or later. */
static void
conn_dispatch(struct http_conn *c)
{
    struct http_request *req = c->req;

    conn_enter(c, CONN_HANDLING);
    log_debug("http.request peer=%s method=%s target=%s body=%zu", c->peer, req->head.method,
              log_quote(req->head.target), req->body.len);
    c->srv->handler(req, c->srv->arg);
}

/* A head has been parsed (and drained from the input): set up the request and its body.
 * Returns 1 (the state changed). */
static int
conn_begin_request(struct http_conn *c, struct http_head *head)
{
    struct http_request *req = request_new(c, head);
    const struct http_head *h = &req->head;
    const char *expect;

    c->req = req;
    if (req->path == NULL) {
        conn_fail(c, 400, "bad_request", "malformed percent-escape in path");
        return 1;
    }
    if (h->chunked) {
        c->body_mode = BODY_CHUNKED;
        c->chunk = CHUNK_SIZE;
    } else if (h->content_length > 0) {
        if ((unsigned long long)h->content_length > c->srv->cfg.max_body_bytes) {
            conn_fail(c, 413, "too_large", "request body too large");
            return 1;
        }
        c->body_mode = BODY_LENGTH;
        c->body_left = (unsigned long long)h->content_length;
    } else {
        c->body_mode = BODY_NONE;
    }
    if (c->body_mode == BODY_NONE) {
        conn_dispatch(c);
        return 1;
    }
    expect = http_head_get(h, "Expect");
    if (expect != NULL && h->minor == 1 && strcasecmp(expect, "100-continue") == 0 &&
        evbuffer_get_length(bufferevent_get_input(c->bev)) == 0) {
        evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    conn_enter(c, CONN_BODY);
    return 1;
}

/* Look for the end of the head in the input, resuming the scan where the last call
 * stopped, and check the request line as soon as it is complete. Returns 0 when more
 * bytes are needed, 1 when the state changed (request started, or failed). */
static int
conn_read_head(struct http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t max = c->srv->cfg.max_header_bytes;
    size_t avail = evbuffer_get_length(in), n, i, end = 0;
    const char *p;
    struct http_head head;
    char *err = NULL;
    int too_large, r;

    if (avail == 0) {
        return 0;
    }
    c->got_bytes = 1;
    if (c->scan == 0) {
        /* RFC 9112 2.2: empty lines (CRLF; a bare LF is refused below, like everywhere in
         * the framing) before a request line are ignored. */
        while (avail > 0) {
            char two[2];

            evbuffer_copyout(in, two, avail >= 2 ? 2 : 1);
            if (two[0] == '\r' && avail >= 2 && two[1] == '\n') {
                evbuffer_drain(in, 2);
                avail -= 2;
            } else {
                break;
            }
        }
        if (avail == 0) {
            return 0;
        }
    }
    n = avail < max ? avail : max;
    p = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
    for (i = c->scan; i < n; i++) {
        if (p[i] != '\n') {
            continue;
        }
        if (i == 0 || p[i - 1] != '\r') {
            conn_fail(c, 400, "bad_request",
                      "bare LF line ending in the request head (CRLF required)");
            return 1;
        }
        if (!c->line1_ok) {
            head_init(&head);
            r = parse_request_line(p, i - 1, &head, &err);
            http_head_free(&head);
            if (r == -1) {
                conn_fail(c, 400, "bad_request", err);
                free(err);
                return 1;
            }
            c->line1_ok = 1;
        } else if (i == c->line_start + 1) {
            end = i + 1;
            break;
        }
        c->line_start = i + 1;
    }
    c->scan = i;
    if (end == 0) {
        if (avail >= max) {
            conn_fail(c, 431, "header_too_large", "request head too large");
            return 1;
        }
        return 0;
    }
    r = parse_head(p, end, max, &head, &err, &too_large);
    if (r <= 0) {
        if (too_large) {
            conn_fail(c, 431, "header_too_large", err != NULL ? err : "request head too large");
        } else {
            conn_fail(c, 400, "bad_request", err != NULL ? err : "malformed request");
        }
        free(err);
        return 1;
    }
    evbuffer_drain(in, end);
    return conn_begin_request(c, &head);
}

/* Move n bytes (all available) from the input to the request body. */
static int
conn_take_body(struct http_conn *c, size_t n)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);

    while (n > 0) {
        struct evbuffer_iovec v;
        size_t take;

        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0) {
            return -1;
        }
        take = v.iov_len < n ? v.iov_len : n;
        if (buf_append(&c->req->body, v.iov_base, take) == -1) {
            return -1;
        }
        evbuffer_drain(in, take);
        n -= take;
    }
    return 0;
}

/* Take one CRLF-terminated line from the input into out (NUL-terminated, without the CRLF;
 * out may be NULL to only drop it). Returns 1 with *linelen set, 0 when no full line is
 * buffered yet (and at most cap bytes plus the CR wait), -1 when the line is longer than
 * cap, LINE_BARE_LF when it ends with a bare LF (refused, as in the head). */
static int
conn_take_line(struct http_conn *c, char *out, size_t cap, size_t *linelen)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t eol_len = 0, n;
    struct evbuffer_ptr pos = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
    char cr;

    if (pos.pos < 0) {
        return evbuffer_get_length(in) > cap + 1 ? -1 : 0;
    }
    if (pos.pos == 0) {
        return LINE_BARE_LF;
    }
    n = (size_t)pos.pos - 1;
    evbuffer_ptr_set(in, &pos, n, EVBUFFER_PTR_SET);
    if (evbuffer_copyout_from(in, &pos, &cr, 1) != 1 || cr != '\r') {
        return LINE_BARE_LF;
    }
    if (n > cap) {
        return -1;
    }
    if (out != NULL) {
        evbuffer_copyout(in, out, n);
        out[n] = '\0';
    }
    evbuffer_drain(in, n + 2);
    *linelen = n;
    return 1;
}

/* Parse a chunk-size line: hex digits, then optional extensions after ';' (ignored). */
static int
chunk_size_parse(const char *line, size_t n, unsigned long long *size, int *overflow)
{
    size_t i = 0;
    unsigned long long v = 0;

    *overflow = 0;
    for (; i < n; i++) {
        int d = hex_value((unsigned char)line[i]);

        if (d < 0) {
            break;
        }
        if (v > (ULLONG_MAX >> 4)) {
            *overflow = 1;
            return -1;
        }
        v = v * 16 + (unsigned)d;
    }
    if (i == 0) {
        return -1;
    }
    while (i < n && (line[i] == ' ' || line[i] == '\t')) {
        i++;
    }
    if (i < n && line[i] != ';') {
        return -1;
    }
    for (; i < n; i++) {
        if (!is_value_char((unsigned char)line[i])) {
            return -1;
        }
    }
    *size = v;
    return 0;
}

/* Over TLS, the bytes after a body (a pipelined request, a chunk's CRLF) may already be
 * decrypted inside SSL, with nothing left in the socket to wake the bufferevent: they go
 * to the input, where the head or chunk reader finds them. At most one record. */
static void
conn_ssl_pending(struct http_conn *c, SSL *ssl)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    char tmp[16384];
    int n;

    while (SSL_pending(ssl) > 0 && (n = SSL_read(ssl, tmp, (int)sizeof(tmp))) > 0) {
        if (evbuffer_add(in, tmp, (size_t)n) == -1) { /* the bufferevent keeps its end frozen */
            evbuffer_unfreeze(in, 0);
            (void)evbuffer_add(in, tmp, (size_t)n);
            evbuffer_freeze(in, 0);
        }
    }
    ERR_clear_error();
}

/* The rest of a body of known length (or of its current chunk), read from the
 * connection straight into the request, as far as it has come (over TLS: the records
 * received so far). The bufferevent reads at most 4 KiB per callback (one 16 KiB record
 * over TLS), and a callback runs once per loop iteration: a body of 1.6 MB took some 400
 * iterations to arrive (8 ms while the loop was storing batches). The body grows by
 * doubling as bytes come, so it holds at most twice what has come. EOF, the peer's
 * close_notify and errors are left for the bufferevent's next read, which meets them
 * too; bytes past the body are never read (over TLS, those already decrypted are handed
 * over: conn_ssl_pending). */
static void
conn_read_direct(struct http_conn *c)
{
    struct buf *body = &c->req->body;
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    SSL *ssl = c->srv->cfg.ssl_ctx != NULL ? bufferevent_openssl_get_ssl(c->bev) : NULL;

    if (fd < 0 || (c->srv->cfg.ssl_ctx != NULL && (ssl == NULL || !SSL_is_init_finished(ssl)))) {
        return;
    }
    while (c->body_left > 0) {
        size_t room, want;
        ssize_t r;

        if (body->cap - body->len <= 1) {
            size_t grow = body->len > 65536 ? body->len : 65536;

            buf_reserve(body, grow < c->body_left ? grow : (size_t)c->body_left);
        }
        room = body->cap - body->len - 1;
        want = room < c->body_left ? room : (size_t)c->body_left;
        if (ssl != NULL) {
            /* Records as they have come; anything but data (more to wait for, the peer's
             * close_notify, an error) is for the bufferevent, which meets it next. */
            r = SSL_read(ssl, body->data + body->len, want > INT_MAX ? INT_MAX : (int)want);
        } else {
            r = read(fd, body->data + body->len, want);
        }
        if (r <= 0) {
            if (ssl != NULL) {
                ERR_clear_error();
            }
            return; /* EAGAIN: the rest comes later */
        }
        body->len += (size_t)r;
        body->data[body->len] = '\0';
        c->body_left -= (unsigned long long)r;
    }
    if (ssl != NULL) {
        conn_ssl_pending(c, ssl);
    }
}

/* Read body bytes by Content-Length or by chunks. Returns 0 when more bytes are needed,
 * 1 when the state changed (dispatched, or failed). */
static int
conn_read_body(struct http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t max = c->srv->cfg.max_body_bytes;
    char line[HTTP_CHUNK_LINE_MAX + 1];
    size_t n, avail;
    int r, overflow;
    unsigned long long size;

    if (c->body_mode == BODY_LENGTH) {
        avail = evbuffer_get_length(in);
        n = avail < c->body_left ? avail : (size_t)c->body_left;
        if (conn_take_body(c, n) == -1) {
            conn_fail(c, 413, "too_large", "request body too large");
            return 1;
        }
        c->body_left -= n;
        if (c->body_left > 0) {
            conn_read_direct(c);
        }
        if (c->body_left > 0) {
            return 0;
        }
        conn_dispatch(c);
        return 1;
    }
    for (;;) {
        switch (c->chunk) {
        case CHUNK_SIZE:
            r = conn_take_line(c, line, HTTP_CHUNK_LINE_MAX, &n);
            if (r == 0) {
                return 0;
            }
            if (r == LINE_BARE_LF) {
                conn_fail(c, 400, "bad_request", "bare LF after a chunk size (CRLF required)");
                return 1;
            }
            if (r == -1 || chunk_size_parse(line, n, &size, &overflow) == -1) {
                if (r != -1 && overflow) {
                    conn_fail(c, 413, "too_large", "request body too large");
                } else {
                    conn_fail(c, 400, "bad_request", "malformed chunk size");
                }
                return 1;
            }
            if (size == 0) {
                c->chunk = CHUNK_TRAILER;
            } else if (size > max - c->req->body.len) {
                conn_fail(c, 413, "too_large", "request body too large");
                return 1;
            } else {
                c->body_left = size;
                c->chunk = CHUNK_DATA;
            }
            break;
        case CHUNK_DATA:
            avail = evbuffer_get_length(in);
            n = avail < c->body_left ? avail : (size_t)c->body_left;
            if (conn_take_body(c, n) == -1) {
                conn_fail(c, 413, "too_large", "request body too large");
                return 1;
            }
            c->body_left -= n;
            if (c->body_left > 0) {
                conn_read_direct(c);
            }
            if (c->body_left > 0) {
                return 0;
            }
            c->chunk = CHUNK_DATA_END;
            break;
        case CHUNK_DATA_END: {
            char two[2];

            /* Exactly CRLF, checked byte by byte: no waiting for a line that is not one. */
            avail = evbuffer_get_length(in);
            if (avail == 0) {
                return 0;
            }
            evbuffer_copyout(in, two, avail >= 2 ? 2 : 1);
            if (two[0] != '\r' || (avail >= 2 && two[1] != '\n')) {
                conn_fail(c, 400, "bad_request", "chunk data not followed by CRLF");
                return 1;
            }
            if (avail < 2) {
                return 0;
            }
            evbuffer_drain(in, 2);
            c->chunk = CHUNK_SIZE;
            break;
        }
        case CHUNK_TRAILER:
            /* Trailer fields are read and ignored, within the head's size cap. */
            r = conn_take_line(c, NULL, c->srv->cfg.max_header_bytes - c->trailer_bytes, &n);
            if (r == 0) {
                return 0;
            }
            if (r == LINE_BARE_LF) {
                conn_fail(c, 400, "bad_request", "bare LF in the trailer section (CRLF required)");
                return 1;
            }
            if (r == -1) {
                conn_fail(c, 431, "header_too_large", "trailer section too large");
                return 1;
            }
            c->trailer_bytes += n + 2;
            if (c->trailer_bytes > c->srv->cfg.max_header_bytes) {
                conn_fail(c, 431, "header_too_large", "trailer section too large");
                return 1;
            }
            if (n == 0) {
                conn_dispatch(c);
                return 1;
            }
            break;
        }
    }
}

/* Advance the connection over the bytes in its input buffer, one phase after another.
 * While a request is with the handler or its reply is being sent, later (pipelined)
 * bytes wait in the buffer. May free c (when the client has shut its side and no further
 * request can complete). */
static void
conn_process(struct http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    int r;

    for (;;) {
        switch (c->state) {
        case CONN_IDLE:
            if (evbuffer_get_length(in) == 0) {
                r = 0;
                break;
            }
            conn_enter(c, CONN_HEAD);
            continue;
        case CONN_HEAD:
            r = conn_read_head(c);
            break;
        case CONN_BODY:
            r = conn_read_body(c);
            break;
        case CONN_CLOSING:
        case CONN_LINGER:
            evbuffer_drain(in, evbuffer_get_length(in));
            return;
        default:
            /* A request is with the handler or its reply is going out: later bytes
             * wait. Once they fill the read-ahead, libevent would call us again and
             * again for them (it expects the input to be drained), so reading stops
             * until this connection reads a request again (conn_enter). */
            if (evbuffer_get_length(in) >= c->srv->cfg.max_header_bytes + HTTP_READ_SLACK &&
                !c->read_held) {
                c->read_held = 1;
                bufferevent_disable(c->bev, EV_READ);
            }
            return;
        }
        if (r == 0) {
            if (c->read_eof) {
                log_debug("http.eof peer=%s", c->peer);
                conn_free(c);
            }
            return;
        }
    }
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_process(arg);
}

/* The output buffer has drained: a reply (or the 100 Continue) has been sent. */
static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct http_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    switch (c->state) {
    case CONN_WRITING:
        if (!c->srv->accepting) {
            conn_linger(c);
            return;
        }
        conn_reset_request(c);
        conn_enter(c, evbuffer_get_length(in) > 0 ? CONN_HEAD : CONN_IDLE);
        conn_process(c);
        return;
    case CONN_CLOSING:
        conn_linger(c);
        return;
    default:
        return;
    }
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct http_conn *c = arg;

    if (what & BEV_EVENT_CONNECTED) {
        return; /* TLS handshake done */
    }
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
        /* The client shut its side. A pending or queued reply is still sent (it may be
         * waiting for it, like nc -N does); bytes already buffered are still served. */
        if (c->state == CONN_HANDLING || c->state == CONN_WRITING || c->state == CONN_CLOSING) {
            c->read_eof = 1;
            return;
        }
        if (c->state == CONN_HEAD && c->got_bytes) {
            log_debug("http.eof peer=%s phase=head", c->peer);
        } else if (c->state == CONN_BODY) {
            log_debug("http.eof peer=%s phase=body", c->peer);
        }
        conn_free(c);
        return;
    }
    if (c->srv->cfg.ssl_ctx != NULL) {
        unsigned long e = bufferevent_get_openssl_error(bev);
        char msg[256];

        if (e != 0) {
            ERR_error_string_n(e, msg, sizeof(msg));
            log_debug("http.tls_error peer=%s err=%s", c->peer, log_quote(msg));
        }
    }
    log_debug("http.conn_error peer=%s phase=%s err=%s", c->peer, conn_state_names[c->state],
              log_quote(evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR())));
    conn_free(c);
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *c = arg;

    (void)fd;
    (void)what;
    switch (c->state) {
    case CONN_HEAD:
        if (!c->got_bytes) {
            /* Nothing of a request came (or the TLS handshake stalled): no reply. */
            log_debug("http.timeout peer=%s phase=connect", c->peer);
            conn_free(c);
            return;
        }
        log_warn("http.timeout peer=%s phase=header", c->peer);
        conn_fail(c, 408, "timeout", "request head not received in time");
        return;
    case CONN_BODY:
        log_warn("http.timeout peer=%s phase=body", c->peer);
        conn_fail(c, 408, "timeout", "request body not received in time");
        return;
    case CONN_IDLE:
        log_debug("http.idle_close peer=%s", c->peer);
        conn_free(c);
        return;
    case CONN_WRITING:
    case CONN_CLOSING:
        log_warn("http.timeout peer=%s phase=write", c->peer);
        conn_free(c);
        return;
    case CONN_LINGER:
        conn_free(c);
        return;
    case CONN_HANDLING:
        return;
    }
}

/* Wrap an accepted socket in a bufferevent (TLS when configured). NULL on failure, with
 * the socket closed. */
static struct http_conn *
conn_new(struct http_server *srv, evutil_socket_t fd, const struct sockaddr *sa)
{
    struct bufferevent *bev;
    struct http_conn *c;

    if (srv->cfg.ssl_ctx != NULL) {
        SSL *ssl = SSL_new(srv->cfg.ssl_ctx);

        if (ssl == NULL) {
            log_warn("http.tls_error step=ssl_new");
            evutil_closesocket(fd);
            return NULL;
        }
        /* With BEV_OPT_CLOSE_ON_FREE the bufferevent owns ssl, also on failure. */
        bev = bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
        if (bev != NULL) {
            bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        }
    } else {
        bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (bev == NULL) {
        log_warn("http.accept_error err=bufferevent");
        evutil_closesocket(fd);
        return NULL;
    }
    c = xcalloc(1, sizeof(*c));
    c->srv = srv;
    c->bev = bev;
    c->timer = evtimer_new(srv->base, conn_timer_cb, c);
    if (c->timer == NULL) {
        abort(); /* only fails on OOM, like xmalloc */
    }
    peer_format(sa, c->peer, sizeof(c->peer));
    conn_reset_request(c);
    bufferevent_setcb(bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_setwatermark(bev, EV_READ, 0, srv->cfg.max_header_bytes + HTTP_READ_SLACK);
    /* Reads of up to the read-ahead at once (libevent's default is 16 KiB): a body of
     * megabytes costs a few dozen reads and callbacks, not hundreds. */
    bufferevent_set_max_single_read(bev, srv->cfg.max_header_bytes + HTTP_READ_SLACK);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    c->next = srv->conns;
    if (srv->conns != NULL) {
        srv->conns->prev = c;
    }
    srv->conns = c;
    return c;
}

/* ---- listeners ---- */

static void
listener_accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
                   void *arg)
{
    struct http_listener *l = arg;
    struct http_server *srv = l->srv;
    int rejected = srv->nconns >= srv->cfg.max_conns;
    int from_peer, peer_full;
    struct http_conn *c;
    int one = 1;
    char peer[INET6_ADDRSTRLEN];

    (void)lev;
    (void)salen;
    /* One client address may hold at most max_conns_per_peer of the max_conns slots, so
     * that a single sender cannot lock all the others out. */
    peer_format(sa, peer, sizeof(peer));
    from_peer = peer_conns(srv, peer);
    peer_full = !rejected && from_peer >= srv->cfg.max_conns_per_peer;
    rejected = rejected || peer_full;
    if (rejected && srv->nrejecting >= HTTP_REJECT_MAX) {
        srv->refused++;
        log_warn("http.overloaded action=drop peer=%s conns=%d peer_conns=%d", peer, srv->nconns,
                 from_peer);
        evutil_closesocket(fd);
        return;
    }
    if (sa != NULL && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)) {
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    c = conn_new(srv, fd, sa);
    if (c == NULL) {
        return;
    }
    if (rejected) {
        c->rejected = 1;
        srv->nrejecting++;
        srv->refused++;
        log_warn("http.overloaded peer=%s conns=%d peer_conns=%d cap=%s", c->peer, srv->nconns,
                 from_peer, peer_full ? "peer" : "total");
        conn_fail(c, 503, "overloaded",
                  peer_full ? "too many connections from this address, retry later"
                            : "too many connections, retry later");
        return;
    }
    srv->nconns++;
    peer_count(srv, c->peer, 1);
    log_debug("http.accept peer=%s conns=%d", c->peer, srv->nconns);
    conn_enter(c, CONN_HEAD);
}

static void
listener_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_listener *l = arg;

    (void)fd;
    (void)what;
    if (l->srv->accepting) {
        evconnlistener_enable(l->lev);
    }
}

/* accept() failed with something other than a transient error. Out of descriptors or
 * memory, the listening socket stays readable and would spin the loop: pause it. */
static void
listener_error_cb(struct evconnlistener *lev, void *arg)
{
    struct http_listener *l = arg;
    int err = EVUTIL_SOCKET_ERROR();

    log_warn("http.accept_error port=%d err=%s", l->port, log_quote(strerror(err)));
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        struct timeval tv = secs_to_tv(HTTP_ACCEPT_RETRY_SECS);

        evconnlistener_disable(lev);
        evtimer_add(l->retry, &tv);
    }
}

/* Bind and listen on addr (SO_REUSEADDR; IPv6 sockets are v6-only, so "[::]:p" and
 * "0.0.0.0:p" can coexist). The socket is owned by the server. */
int
http_server_listen(struct http_server *srv, const char *addr, char **errp)
{
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    int fd, one = 1;
    struct http_listener *l;

    if (util_parse_listen(addr, &ss, &sslen, errp) == -1) {
        return -1;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return kg_err(errp, "listen %s: socket: %s", addr, strerror(errno));
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
        (ss.ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) == -1)) {
        kg_err(errp, "listen %s: setsockopt: %s", addr, strerror(errno));
        close(fd);
        return -1;
    }
    if (bind(fd, (struct sockaddr *)&ss, sslen) == -1) {
        kg_err(errp, "listen %s: bind: %s", addr, strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, 511) == -1) {
        kg_err(errp, "listen %s: listen: %s", addr, strerror(errno));
        close(fd);
        return -1;
    }
    sslen = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == -1) {
        kg_err(errp, "listen %s: getsockname: %s", addr, strerror(errno));
        close(fd);
        return -1;
    }
    l = xcalloc(1, sizeof(*l));
    l->srv = srv;
    l->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    l->lev = evconnlistener_new(srv->base, listener_accept_cb, l,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
    if (l->lev == NULL) {
        close(fd);
        free(l);
        return kg_err(errp, "listen %s: cannot create listener", addr);
    }
    l->retry = evtimer_new(srv->base, listener_retry_cb, l);
    if (l->retry == NULL) {
        abort();
    }
    evconnlistener_set_error_cb(l->lev, listener_error_cb);
    if (!srv->accepting) {
        evconnlistener_disable(l->lev);
    }
    srv->listeners = xrealloc(srv->listeners, (srv->nlisteners + 1) * sizeof(*srv->listeners));
    srv->listeners[srv->nlisteners++] = l;
    util_own_port_add(l->port);
    log_info("http.listen addr=%s port=%d tls=%d", addr, l->port, srv->cfg.ssl_ctx != NULL);
    return 0;
}

/* ---- server ---- */

/* A server on base; cfg is copied (NULL or zero fields take the defaults), ssl_ctx stays
 * the caller's. handler is called once per complete request, with arg. */
struct http_server *
http_server_new(struct event_base *base, const struct http_config *cfg, http_handler handler,
                void *arg)
{
    struct http_server *srv = xcalloc(1, sizeof(*srv));

    if (cfg != NULL) {
        srv->cfg = *cfg;
    }
    if (srv->cfg.max_header_bytes == 0) {
        srv->cfg.max_header_bytes = 16 * 1024;
    }
    if (srv->cfg.max_body_bytes == 0) {
        srv->cfg.max_body_bytes = 4 * 1024 * 1024;
    }
    if (srv->cfg.max_conns <= 0) {
        srv->cfg.max_conns = 1024;
    }
    if (srv->cfg.max_conns_per_peer <= 0) {
        srv->cfg.max_conns_per_peer = 64;
    }
    if (srv->cfg.header_timeout <= 0) {
        srv->cfg.header_timeout = 10;
    }
    if (srv->cfg.body_timeout <= 0) {
        srv->cfg.body_timeout = 30;
    }
    if (srv->cfg.idle_timeout <= 0) {
        srv->cfg.idle_timeout = 60;
    }
    if (srv->cfg.write_timeout <= 0) {
        srv->cfg.write_timeout = 30;
    }
    if (util_random(&srv->id_prefix, sizeof(srv->id_prefix)) == -1) {
        srv->id_prefix = (uint32_t)util_now_ms() ^ (uint32_t)getpid();
    }
    srv->base = base;
    srv->handler = handler;
    srv->arg = arg;
    srv->accepting = 1;
    return srv;
}

int
http_server_port(const struct http_server *srv)
{
    if (srv == NULL || srv->nlisteners == 0) {
        return -1;
    }
    return srv->listeners[0]->port;
}

/* Stop accepting (drain): listeners are disabled, idle keep-alive connections close now,
 * the others finish their current request and close after its reply. */
void
http_server_stop_accepting(struct http_server *srv)
{
    struct http_conn *c, *next;

    if (srv == NULL || !srv->accepting) {
        return;
    }
    srv->accepting = 0;
    for (size_t i = 0; i < srv->nlisteners; i++) {
        evconnlistener_disable(srv->listeners[i]->lev);
        evtimer_del(srv->listeners[i]->retry);
    }
    for (c = srv->conns; c != NULL; c = next) {
        next = c->next;
        if (c->state == CONN_IDLE) {
            conn_free(c);
        }
    }
    log_info("http.drain conns=%d", srv->nconns);
}

int
http_server_conns(const struct http_server *srv)
{
    return srv != NULL ? srv->nconns : 0;
}

unsigned long long
http_server_refused(const struct http_server *srv)
{
    return srv != NULL ? srv->refused : 0;
}

/* Free the server: listeners, every connection, and every request not yet replied to,
 * orphaned or not. Requests the handler still holds become invalid: callers must not
 * call http_reply (or anything else) on them after this, nor free the server from inside
 * the handler. */
void
http_server_free(struct http_server *srv)
{
    if (srv == NULL) {
        return;
    }
    srv->freeing = 1;
    for (size_t i = 0; i < srv->nlisteners; i++) {
        util_own_port_del(srv->listeners[i]->port);
        evconnlistener_free(srv->listeners[i]->lev);
        event_free(srv->listeners[i]->retry);
        free(srv->listeners[i]);
    }
    free(srv->listeners);
    while (srv->conns != NULL) {
        conn_free(srv->conns);
    }
    while (srv->orphans != NULL) {
        struct http_request *req = srv->orphans;

        orphan_unlink(req);
        request_free(req);
    }
    free(srv);
}

/* ---- request accessors ---- */

const char *
http_request_method(const struct http_request *req)
{
    return req->head.method;
}

const char *
http_request_path(const struct http_request *req)
{
    return req->path;
}

const char *
http_request_query(const struct http_request *req)
{
    return req->query;
}

void
http_parse_query(const char *p, char ***names, char ***values, size_t *n)
{
    while (p != NULL && *p != '\0') {
        const char *amp = strchr(p, '&');
        const char *end = amp != NULL ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));

        if (end > p) {
            char *name = http_url_decode(p, (size_t)((eq != NULL ? eq : end) - p), 1);
            char *value =
                eq != NULL ? http_url_decode(eq + 1, (size_t)(end - eq - 1), 1) : xstrdup("");

            if (name != NULL && value != NULL) {
                *names = xrealloc(*names, (*n + 1) * sizeof(char *));
                *values = xrealloc(*values, (*n + 1) * sizeof(char *));
                (*names)[*n] = name;
                (*values)[*n] = value;
                (*n)++;
            } else {
                free(name);
                free(value);
            }
        }
        p = amp != NULL ? amp + 1 : NULL;
    }
}

/* Split the query into decoded name/value pairs, once. */
static void
request_parse_params(struct http_request *req)
{
    req->params_done = 1;
    http_parse_query(req->query, &req->pnames, &req->pvalues, &req->nparams);
}

const char *
http_request_param(struct http_request *req, const char *name)
{
    if (!req->params_done) {
        request_parse_params(req);
    }
    for (size_t i = 0; i < req->nparams; i++) {
        if (strcmp(req->pnames[i], name) == 0) {
            return req->pvalues[i];
        }
    }
    return NULL;
}

const char *
http_request_header(const struct http_request *req, const char *name)
{
    return http_head_get(&req->head, name);
}

/* The body, NUL-terminated for convenience ("" when there is none). */
const char *
http_request_body(const struct http_request *req, size_t *len)
{
    if (len != NULL) {
        *len = req->body.len;
    }
    return req->body.data != NULL ? req->body.data : "";
}

const char *
http_request_peer(const struct http_request *req)
{
    return req->peer;
}

const char *
http_request_id(const struct http_request *req)
{
    return req->id;
}

void
http_request_set_client(struct http_request *req, const char *name)
{
    snprintf(req->client, sizeof(req->client), "%s", name != NULL ? name : "");
}

/* ---- replies ---- */

static int
is_header_safe(const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\r' || *s == '\n') {
            return 0;
        }
    }
    return 1;
}

/* Add a response header. Names must be tokens and values free of CR/LF (else the header
 * is dropped with a warning: no response splitting); the framing headers the server
 * writes itself (Content-Length, Transfer-Encoding, Connection, Date) are dropped too. */
void
http_reply_header(struct http_request *req, const char *name, const char *value)
{
    int ok = name[0] != '\0' && is_header_safe(value);

    for (const char *p = name; ok && *p != '\0'; p++) {
        ok = is_tchar((unsigned char)*p);
    }
    if (!ok || strcasecmp(name, "Content-Length") == 0 ||
        strcasecmp(name, "Transfer-Encoding") == 0 || strcasecmp(name, "Connection") == 0 ||
        strcasecmp(name, "Date") == 0) {
        log_warn("http.reply_header_dropped name=%s", log_quote(name));
        return;
    }
    if (buf_printf(&req->reply_headers, "%s: %s\r\n", name, value) == -1) {
        log_warn("http.reply_header_dropped name=%s reason=too_large", log_quote(name));
    }
}

/* Send the reply and release req. On an orphaned request (client gone) the reply is
 * discarded and req freed. The connection stays open for the next request unless the
 * client asked to close, or the server is draining. */
void
http_reply(struct http_request *req, int status, const char *content_type, const char *body,
           size_t len)
{
    struct http_conn *c = req->conn;
    int close, head_only;

    if (c == NULL) {
        log_debug("http.reply_discarded peer=%s status=%d", req->peer, status);
        orphan_unlink(req);
        request_free(req);
        return;
    }
    if (status < 200 || status > 599) {
        log_warn("http.bad_status status=%d", status);
        status = 500;
    }
    if (content_type != NULL && !is_header_safe(content_type)) {
        content_type = NULL;
    }
    if (body == NULL) {
        len = 0;
    }
    close = !req->head.keep_alive || !c->srv->accepting;
    head_only = strcmp(req->head.method, "HEAD") == 0;
    if (status >= 400 && req->err_code != NULL && c->srv->cfg.on_reject != NULL) {
        struct http_reject rej = {
            status,           req->err_code, req->err_msg,
            req->peer,        req->id,       req->client[0] ? req->client : NULL,
            req->head.method, req->path,     req
        };

        c->srv->cfg.on_reject(&rej, c->srv->cfg.reject_arg);
    }
    conn_write(c, status, req->id, content_type, &req->reply_headers, body, len, close,
               !close && req->head.minor == 0, head_only);
    log_debug("http.reply peer=%s status=%d bytes=%zu close=%d", c->peer, status, len, close);
    c->req = NULL;
    request_free(req);
    conn_enter(c, close ? CONN_CLOSING : CONN_WRITING);
    if (close) {
        struct evbuffer *in = bufferevent_get_input(c->bev);

        evbuffer_drain(in, evbuffer_get_length(in));
    } else {
        conn_flush(c);
    }
}

void
http_reply_error(struct http_request *req, int status, const char *code, const char *message)
{
    size_t len;
    char *body = error_body(code, message, &len);

    req->err_code = code;
    req->err_msg = message;
    http_reply(req, status, "application/json", body, len);
    free(body);
}
