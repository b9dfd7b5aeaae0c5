/* httpc.c: asynchronous HTTP client on libcurl's multi-socket interface, driven by the
 * engine's libevent loop.
 *
 * libcurl tells us which sockets to watch (sock_cb) and when to wake it (timer_fn); the
 * libevent callbacks hand the events back with curl_multi_socket_action() and then read
 * the finished transfers (check_multi_info). User callbacks run only from there, after
 * libcurl has returned, or from a zero-delay "deliver" event for calls that failed
 * before their transfer could start: never from inside a libcurl callback and never
 * from inside httpc_start(). */
#include "connectors/httpc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <curl/curl.h>

#include "engine/kagari.h"

#define HTTPC_DEFAULT_TIMEOUT 30.0
#define HTTPC_DEFAULT_MAX_RESPONSE ((size_t)16 * 1024 * 1024)
#define HTTPC_MAX_HOST_CONNS 16L
#define HTTPC_MAX_CONNS 64L
#define HTTPC_MAX_HEADER_VALUE 1024 /* longest Retry-After/Content-Type/id value kept */

/* Outbound TLS: 1.2 or later. For TLS 1.2 only forward-secret AEAD suites (Mozilla's
 * "intermediate" profile without DHE); TLS 1.3 suites are all AEAD and kept at their
 * defaults. A server offering nothing else (AES-CBC with RSA key exchange, TLS 1.0/1.1)
 * fails the handshake. */
#define HTTPC_TLS12_CIPHERS                                                                        \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define HTTPC_TLS13_CIPHERS                                                                        \
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
/* The content codings we ask for and libcurl decodes; an answer in any other is refused. */
#define HTTPC_ACCEPT_ENCODING "gzip, deflate"

/* One socket libcurl asked us to watch. The event is allocated with libevent's struct
 * size so it can be re-assigned in place when libcurl changes what it waits for. */
struct httpc_sock {
    curl_socket_t fd;
    struct event *ev;
    int assigned; /* ev holds an event_assign()ed event */
    struct httpc_sock *prev, *next;
};

enum httpc_state {
    HTTPC_QUEUED = -1, /* waiting for a connection slot: not yet in the multi handle */
    HTTPC_ACTIVE = 0,  /* the easy handle is in the multi handle */
    HTTPC_DONE,        /* finished (or failed at once); callback pending */
    HTTPC_DELIVERING   /* its callback is running */
};

struct httpc_call {
    enum httpc_state state;
    CURL *easy;
    struct curl_slist *headers;
    char *method;
    char *host;   /* for logs only: never the path or query */
    char *origin; /* "host:port": the connection slot it needs */
    char *body;
    struct buf resp;
    int too_big;
    int sends;          /* times libcurl was about to send the request (its pre-request hook) */
    char *bad_encoding; /* a Content-Encoding we did not ask for: the transfer is aborted */
    char *retry_after;
    char *content_type;
    char *request_id;
    char *client_request_id;
    httpc_done_fn fn;
    void *arg;
    int64_t start_us;
    CURLcode result;
    long status;
    char *fail; /* our own error text (failed at once, response too large) */
    char errbuf[CURL_ERROR_SIZE];
    int mail;                 /* an SMTP submission (httpc_send_mail), not HTTP */
    struct curl_slist *rcpts; /* mail: the envelope recipients */
    size_t sent;              /* mail: bytes of body read by libcurl so far */
    size_t body_len;
    struct httpc_call *prev, *next;
};

struct httpc_list {
    struct httpc_call *head, *tail;
};

static struct {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;   /* libcurl's single timeout */
    struct event *deliver; /* zero-delay: run callbacks of the done list */
    struct httpc_list active;
    struct httpc_list queued; /* waiting for a slot, oldest first */
    struct httpc_list done;
    struct httpc_sock *socks;
    int n;           /* calls whose callback has neither run nor been cancelled */
    int curl_global; /* curl_global_init() was called by httpc_init */
} hc;

static void
list_push(struct httpc_list *l, struct httpc_call *c)
{
    c->next = NULL;
    c->prev = l->tail;
    if (l->tail != NULL) {
        l->tail->next = c;
    } else {
        l->head = c;
    }
    l->tail = c;
}

static void
list_unlink(struct httpc_list *l, struct httpc_call *c)
{
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        l->head = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    } else {
        l->tail = c->prev;
    }
    c->prev = c->next = NULL;
}

/* Free a call and everything it owns. Its easy handle must no longer be in the multi
 * handle. */
static void
call_free(struct httpc_call *c)
{
    if (c->easy != NULL) {
        curl_easy_cleanup(c->easy);
    }
    curl_slist_free_all(c->headers);
    curl_slist_free_all(c->rcpts);
    free(c->method);
    free(c->host);
    free(c->origin);
    free(c->body);
    buf_free(&c->resp);
    free(c->retry_after);
    free(c->content_type);
    free(c->request_id);
    free(c->client_request_id);
    free(c->bad_encoding);
    free(c->fail);
    free(c);
}

/* ---- response collection (libcurl callbacks: they only store data) ---- */

/* Body data. Over the cap, returning less than we were given makes libcurl abort the
 * transfer with CURLE_WRITE_ERROR; too_big tells that error apart. */
static size_t
write_cb(char *p, size_t size, size_t nmemb, void *userp)
{
    struct httpc_call *c = userp;
    size_t n = size * nmemb;

    if (buf_append(&c->resp, p, n) == -1) {
        c->too_big = 1;
        return 0;
    }
    return n;
}

static void
set_header(char **slot, const char *v, size_t n)
{
    if (n > HTTPC_MAX_HEADER_VALUE) {
        n = HTTPC_MAX_HEADER_VALUE;
    }
    free(*slot);
    *slot = xstrndup(v, n);
}

/* 1 when every coding of a Content-Encoding value is one we asked for (or identity). */
static int
encoding_ok(const char *v, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t start, len;

        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ',')) {
            i++;
        }
        start = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t') {
            i++;
        }
        len = i - start;
        if (len == 0) {
            continue;
        }
        if (!((len == 4 && strncasecmp(v + start, "gzip", 4) == 0) ||
              (len == 7 && strncasecmp(v + start, "deflate", 7) == 0) ||
              (len == 8 && strncasecmp(v + start, "identity", 8) == 0))) {
            return 0;
        }
    }
    return 1;
}

/* One header line ("Name: value\r\n"), or a status line. A new status line starts a new
 * response (after a 1xx): what was collected from the previous one is dropped. Names are
 * compared without case (HTTP/2 sends them in lower case). */
static size_t
header_cb(char *p, size_t size, size_t nmemb, void *userp)
{
    struct httpc_call *c = userp;
    size_t n = size * nmemb, nlen;
    const char *colon, *v, *end;

    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        free(c->retry_after);
        free(c->content_type);
        free(c->request_id);
        free(c->client_request_id);
        c->retry_after = c->content_type = c->request_id = c->client_request_id = NULL;
        return n;
    }
    colon = memchr(p, ':', n);
    if (colon == NULL) {
        return n;
    }
    nlen = (size_t)(colon - p);
    v = colon + 1;
    end = p + n;
    while (v < end && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    if (nlen == 11 && strncasecmp(p, "Retry-After", nlen) == 0) {
        set_header(&c->retry_after, v, (size_t)(end - v));
    } else if (nlen == 12 && strncasecmp(p, "Content-Type", nlen) == 0) {
        set_header(&c->content_type, v, (size_t)(end - v));
    } else if (nlen == 10 && strncasecmp(p, "request-id", nlen) == 0) {
        set_header(&c->request_id, v, (size_t)(end - v));
    } else if (nlen == 17 && strncasecmp(p, "client-request-id", nlen) == 0) {
        set_header(&c->client_request_id, v, (size_t)(end - v));
    } else if (nlen == 16 && strncasecmp(p, "Content-Encoding", nlen) == 0 &&
               !encoding_ok(v, (size_t)(end - v))) {
        /* libcurl would hand the coded bytes over as the body (or decode a coding we
         * did not offer): refuse the answer instead. */
        set_header(&c->bad_encoding, v, (size_t)(end - v));
        for (char *q = c->bad_encoding; *q != '\0'; q++) {
            if (*q < 0x21 || *q > 0x7e) {
                *q = '?'; /* it ends up in messages and the journal */
            }
        }
        return 0;
    }
    return n;
}

/* ---- delivery ---- */

/* Run the callbacks of every call on the done list, oldest first. Each call is taken off
 * the list before its callback runs, so the callback may start calls, cancel others or
 * even shut httpc down; its own handle is freed after it returns. The easy handle is
 * released first (its connection stays in the multi handle's cache) so that a shutdown
 * from the callback leaves nothing of libcurl to clean up afterwards. */
static void
deliver_all(void)
{
    struct httpc_call *c;

    while ((c = hc.done.head) != NULL) {
        struct httpc_response r;
        double ms;

        list_unlink(&hc.done, c);
        c->state = HTTPC_DELIVERING;
        hc.n--;
        if (c->easy != NULL) {
            curl_easy_cleanup(c->easy);
            c->easy = NULL;
        }
        memset(&r, 0, sizeof(r));
        ms = (double)(util_mono_us() - c->start_us) / 1000.0;
        r.elapsed_ms = ms;
        r.retry_after = c->retry_after;
        r.content_type = c->content_type;
        r.request_id = c->request_id != NULL ? c->request_id : c->client_request_id;
        r.body = "";
        if (c->fail != NULL) {
            r.error = c->fail;
        } else if (c->result != CURLE_OK) {
            r.timed_out = c->result == CURLE_OPERATION_TIMEDOUT;
            r.error = c->errbuf[0] != '\0' ? c->errbuf : curl_easy_strerror(c->result);
        } else if (c->status <= 0 && !c->mail) {
            r.error = "no HTTP status in the response";
        } else {
            r.status = (int)c->status;
            if (c->resp.data != NULL) {
                r.body = c->resp.data;
                r.body_len = c->resp.len;
            }
        }
        if (c->mail && r.error != NULL) {
            r.status = (int)c->status; /* an SMTP reply code (e.g. 451), or 0 */
        }
        if (r.error != NULL) {
            log_debug("httpc.done method=%s host=%s status=0 ms=%.0f timed_out=%d error=%s",
                      c->method, c->host, ms, r.timed_out, log_quote(r.error));
        } else {
            log_debug("httpc.done method=%s host=%s status=%d ms=%.0f bytes=%zu", c->method,
                      c->host, r.status, ms, r.body_len);
        }
        c->fn(c->arg, &r);
        call_free(c);
    }
}

/* Connection slots: a call enters the multi handle only when its host has fewer than
 * HTTPC_MAX_HOST_CONNS transfers there and all hosts fewer than HTTPC_MAX_CONNS, so that
 * its timeout counts the time on the wire (connect and answer), never the time spent
 * waiting for a slot: libcurl's own queue would count it. */
static int
slot_free(const char *origin)
{
    long host = 0, total = 0;

    for (struct httpc_call *c = hc.active.head; c != NULL; c = c->next) {
        total++;
        host += strcmp(c->origin, origin) == 0;
    }
    return host < HTTPC_MAX_HOST_CONNS && total < HTTPC_MAX_CONNS;
}

/* Put c's easy handle in the multi handle (its timeout starts now), or fail it. */
static void
activate(struct httpc_call *c)
{
    CURLMcode mres;

    c->start_us = util_mono_us();
    mres = curl_multi_add_handle(hc.multi, c->easy);
    if (mres != CURLM_OK) {
        c->fail = xasprintf("curl_multi_add_handle: %s", curl_multi_strerror(mres));
        c->state = HTTPC_DONE;
        list_push(&hc.done, c);
        event_active(hc.deliver, 0, 0);
        return;
    }
    c->state = HTTPC_ACTIVE;
    list_push(&hc.active, c);
}

/* Start the queued calls that now have a slot, oldest first. */
static void
promote(void)
{
    struct httpc_call *c = hc.queued.head, *next;

    for (; c != NULL; c = next) {
        next = c->next;
        if (slot_free(c->origin)) {
            list_unlink(&hc.queued, c);
            activate(c);
        }
    }
}

/* "host:port" of url (the port the scheme implies when none is given). */
static char *
origin_of(const char *url)
{
    CURLU *u = curl_url();
    char *h = NULL, *p = NULL, *out = NULL;

    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        out = xasprintf("%s:%s", h, p);
    }
    curl_free(h);
    curl_free(p);
    curl_url_cleanup(u);
    return out != NULL ? out : xstrdup(url);
}

/* Move every finished transfer from the multi handle to the done list, then deliver.
 * Called only after curl_multi_socket_action() has returned. */
static void
check_multi_info(void)
{
    CURLMsg *msg;
    int left;

    while (hc.multi != NULL && (msg = curl_multi_info_read(hc.multi, &left)) != NULL) {
        struct httpc_call *c;
        char *priv = NULL;
        CURL *e = msg->easy_handle;
        CURLcode res = msg->data.result;

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        /* msg is invalid once the handle is removed: everything is read before. */
        curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
        c = (struct httpc_call *)(void *)priv;
        curl_multi_remove_handle(hc.multi, e);
        if (c == NULL || c->state != HTTPC_ACTIVE) {
            continue;
        }
        c->result = res;
        if (res == CURLE_OK) {
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &c->status);
        } else if (c->bad_encoding != NULL) {
            c->fail = xasprintf("the answer's Content-Encoding %s was not asked for (only %s)",
                                c->bad_encoding, HTTPC_ACCEPT_ENCODING);
        } else if (c->too_big || res == CURLE_FILESIZE_EXCEEDED) {
            c->fail = xasprintf("response larger than %zu bytes", c->resp.max);
        } else if (c->sends > 1 && res == CURLE_ABORTED_BY_CALLBACK) {
            c->fail = xasprintf("the connection to %s closed before any answer (not resent "
                                "by the transport: the caller decides)",
                                c->host);
        } else if (c->mail && res != CURLE_OK) {
            long code = 0;

            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
            c->status = code; /* the server's last reply code, when it sent one */
            if (res == CURLE_USE_SSL_FAILED) {
                c->fail = xasprintf("the mail server %s does not offer STARTTLS", c->host);
            }
        } else if (res == CURLE_SSL_CONNECT_ERROR) {
            c->fail =
                xasprintf("TLS handshake with %s failed: it must offer TLS 1.2 or later "
                          "with an ECDHE AES-GCM or ChaCha20 cipher (%s)",
                          c->host, c->errbuf[0] != '\0' ? c->errbuf : curl_easy_strerror(res));
        }
        list_unlink(&hc.active, c);
        c->state = HTTPC_DONE;
        list_push(&hc.done, c);
    }
    promote();
    deliver_all();
}

static void
deliver_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    deliver_all();
}

/* ---- libevent <-> libcurl ---- */

static void
sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
    int action = 0, running = 0;

    (void)arg;
    if (what & EV_READ) {
        action |= CURL_CSELECT_IN;
    }
    if (what & EV_WRITE) {
        action |= CURL_CSELECT_OUT;
    }
    curl_multi_socket_action(hc.multi, fd, action, &running);
    check_multi_info();
}

static void
timer_event_cb(evutil_socket_t fd, short what, void *arg)
{
    int running = 0;

    (void)fd;
    (void)what;
    (void)arg;
    curl_multi_socket_action(hc.multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi_info();
}

static void
sock_free(struct httpc_sock *s)
{
    if (s->assigned) {
        event_del(s->ev);
    }
    if (s->prev != NULL) {
        s->prev->next = s->next;
    } else {
        hc.socks = s->next;
    }
    if (s->next != NULL) {
        s->next->prev = s->prev;
    }
    free(s->ev);
    free(s);
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what libcurl wants, or stop watching it. */
static int
sock_cb(CURL *e, curl_socket_t fd, int what, void *userp, void *sockp)
{
    struct httpc_sock *s = sockp;
    short kind = EV_PERSIST;

    (void)e;
    (void)userp;
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            curl_multi_assign(hc.multi, fd, NULL);
            sock_free(s);
        }
        return 0;
    }
    if (s == NULL) {
        s = xcalloc(1, sizeof(*s));
        s->fd = fd;
        s->ev = xmalloc(event_get_struct_event_size());
        s->next = hc.socks;
        if (hc.socks != NULL) {
            hc.socks->prev = s;
        }
        hc.socks = s;
        curl_multi_assign(hc.multi, fd, s);
    } else if (s->assigned) {
        event_del(s->ev);
        s->assigned = 0;
    }
    if (what & CURL_POLL_IN) {
        kind |= EV_READ;
    }
    if (what & CURL_POLL_OUT) {
        kind |= EV_WRITE;
    }
    if (event_assign(s->ev, hc.base, fd, kind, sock_event_cb, NULL) == -1 ||
        event_add(s->ev, NULL) == -1) {
        log_err("httpc.event_failed fd=%d", (int)fd);
        return -1;
    }
    s->assigned = 1;
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: libcurl's one timeout; -1 deletes it. Only arms the timer:
 * calling into libcurl from here is not allowed. */
static int
timer_fn(CURLM *m, long timeout_ms, void *userp)
{
    struct timeval tv;

    (void)m;
    (void)userp;
    if (timeout_ms < 0) {
        evtimer_del(hc.timer);
        return 0;
    }
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    return evtimer_add(hc.timer, &tv) == 0 ? 0 : -1;
}

/* ---- public API ---- */

/* Set up the multi handle on base. With CURLOPT_NOSIGNAL libcurl leaves SIGPIPE to the
 * application, and OpenSSL writes to sockets with plain write(): a peer that goes away
 * mid-handshake would kill the process. SIGPIPE is therefore ignored here unless someone
 * installed a handler (serve.c ignores it too). */
int
httpc_init(struct event_base *base, char **errp)
{
    struct sigaction sa;

    if (hc.multi != NULL) {
        return kg_err(errp, "httpc already initialized");
    }
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        signal(SIGPIPE, SIG_IGN);
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return kg_err(errp, "curl_global_init failed");
    }
    memset(&hc, 0, sizeof(hc));
    hc.curl_global = 1;
    hc.base = base;
    hc.multi = curl_multi_init();
    hc.timer = evtimer_new(base, timer_event_cb, NULL);
    hc.deliver = event_new(base, -1, 0, deliver_cb, NULL);
    if (hc.multi == NULL || hc.timer == NULL || hc.deliver == NULL) {
        httpc_shutdown();
        return kg_err(errp, "httpc: cannot create the multi handle or its events");
    }
    curl_multi_setopt(hc.multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(hc.multi, CURLMOPT_TIMERFUNCTION, timer_fn);
    curl_multi_setopt(hc.multi, CURLMOPT_MAX_HOST_CONNECTIONS, HTTPC_MAX_HOST_CONNS);
    curl_multi_setopt(hc.multi, CURLMOPT_MAXCONNECTS, HTTPC_MAX_CONNS);
    curl_multi_setopt(hc.multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    return 0;
}

/* Cancel every call (no callbacks), close every connection and free libcurl's state.
 * Must run before the event base is freed. Safe to call when not initialized and from
 * inside a completion callback. */
void
httpc_shutdown(void)
{
    struct httpc_call *c;
    int was_init = hc.curl_global;

    while ((c = hc.active.head) != NULL) {
        list_unlink(&hc.active, c);
        curl_multi_remove_handle(hc.multi, c->easy);
        call_free(c);
    }
    while ((c = hc.done.head) != NULL) {
        list_unlink(&hc.done, c);
        call_free(c);
    }
    while ((c = hc.queued.head) != NULL) {
        list_unlink(&hc.queued, c);
        call_free(c);
    }
    if (hc.multi != NULL) {
        curl_multi_cleanup(hc.multi); /* may still call sock_cb and timer_fn */
    }
    while (hc.socks != NULL) {
        sock_free(hc.socks);
    }
    if (hc.timer != NULL) {
        event_free(hc.timer);
    }
    if (hc.deliver != NULL) {
        event_free(hc.deliver);
    }
    memset(&hc, 0, sizeof(hc));
    if (was_init) {
        curl_global_cleanup();
    }
}

/* 1 when host (as libcurl's URL parser gives it: IPv6 in brackets) is a loopback name or
 * address: localhost, 127.0.0.0/8 or ::1. */
static int
host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    char tmp[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(host);

    if (strcasecmp(host, "localhost") == 0) {
        return 1;
    }
    if (inet_pton(AF_INET, host, &a4) == 1) {
        return (ntohl(a4.s_addr) >> 24) == 127;
    }
    if (n > 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof(tmp)) {
        memcpy(tmp, host + 1, n - 2);
        tmp[n - 2] = '\0';
        return inet_pton(AF_INET6, tmp, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
    }
    return 0;
}

/* Check the URL: absolute, http or https, plain http only to loopback. Sets *hostp to a
 * malloc'd copy of the host. */
static int
check_url(const char *url, char **hostp, char **errp)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = -1;

    if (u == NULL) {
        return kg_err(errp, "out of memory");
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) {
        kg_err(errp, "invalid URL");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
        kg_err(errp, "invalid URL: no scheme or host");
        goto out;
    }
    if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0) {
        kg_err(errp, "unsupported URL scheme %s (https only)", scheme);
        goto out;
    }
    if (strcmp(scheme, "http") == 0 && !host_is_loopback(host)) {
        kg_err(errp, "plain http to %s refused: https is required except for loopback", host);
        goto out;
    }
    *hostp = xstrdup(host);
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

static int
check_method(const char *m)
{
    size_t n = 0;

    if (m == NULL) {
        return -1;
    }
    for (; m[n] != '\0'; n++) {
        if (m[n] < 'A' || m[n] > 'Z') {
            return -1;
        }
    }
    return n > 0 && n < 16 ? 0 : -1;
}

/* libcurl's pre-request hook: called each time the request is about to go out on a
 * connection. libcurl sends a request again by itself when a reused connection closed
 * before any answer (or an HTTP/2 stream was refused); that second send is refused here,
 * so the transfer fails and the caller's retry policy (its attempts, its counting of
 * errors, its idempotency rules) decides whether the request is sent again. */
static int
prereq_cb(void *arg, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
          int conn_local_port)
{
    struct httpc_call *c = arg;

    (void)conn_primary_ip;
    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    if (++c->sends > 1) {
        return CURL_PREREQFUNC_ABORT;
    }
    return CURL_PREREQFUNC_OK;
}

/* Configure c's easy handle for rq. Returns the first libcurl error. */
static CURLcode
call_setup(struct httpc_call *c, const struct httpc_request *rq, size_t max_response)
{
    CURL *e = c->easy;
    CURLcode res = CURLE_OK;
    double timeout = rq->timeout > 0 ? rq->timeout : HTTPC_DEFAULT_TIMEOUT;
    long timeout_ms;

    if (timeout > 86400.0) {
        timeout = 86400.0; /* keeps the conversion below in range */
    }
    timeout_ms = (long)(timeout * 1000.0);

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (res == CURLE_OK) {                                                                     \
            res = curl_easy_setopt(e, opt, val);                                                   \
        }                                                                                          \
    } while (0)

    SET(CURLOPT_URL, rq->url);
    SET(CURLOPT_PRIVATE, (void *)c);
    SET(CURLOPT_ERRORBUFFER, c->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    SET(CURLOPT_SSL_CIPHER_LIST, HTTPC_TLS12_CIPHERS);
    SET(CURLOPT_TLS13_CIPHERS, HTTPC_TLS13_CIPHERS);
    SET(CURLOPT_ACCEPT_ENCODING, HTTPC_ACCEPT_ENCODING);
    if (rq->ca_file != NULL) {
        SET(CURLOPT_CAINFO, rq->ca_file);
    }
    /* An empty proxy disables the *_proxy environment variables; NOPROXY "" means no
     * host bypasses a configured proxy. */
    SET(CURLOPT_PROXY, rq->proxy != NULL ? rq->proxy : "");
    SET(CURLOPT_NOPROXY, "");
    SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* Over TLS, wait for ALPN to tell whether an opening connection can multiplex
     * rather than open more. Not for plain http: there the answer only comes with the
     * first response, and a slow one would hold every other call back. */
    if (strncasecmp(rq->url, "https:", 6) == 0) {
        SET(CURLOPT_PIPEWAIT, 1L);
    }
    if (rq->once) {
        /* libcurl resends a request by itself only over a reused connection. */
        SET(CURLOPT_FRESH_CONNECT, 1L);
    }
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 1L);
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_response);
    SET(CURLOPT_USERAGENT, "kagari");
    SET(CURLOPT_WRITEFUNCTION, write_cb);
    SET(CURLOPT_WRITEDATA, (void *)c);
    SET(CURLOPT_HEADERFUNCTION, header_cb);
    SET(CURLOPT_HEADERDATA, (void *)c);
    SET(CURLOPT_HTTPHEADER, c->headers);
    SET(CURLOPT_PREREQFUNCTION, prereq_cb);
    SET(CURLOPT_PREREQDATA, (void *)c);

    if (strcmp(c->method, "GET") == 0 && c->body == NULL) {
        SET(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(c->method, "HEAD") == 0) {
        SET(CURLOPT_NOBODY, 1L);
    } else {
        /* A POST/PUT/PATCH without a body still sends "Content-Length: 0", which some
         * servers require; DELETE without a body sends nothing. */
        if (c->body != NULL || strcmp(c->method, "DELETE") != 0) {
            SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
            SET(CURLOPT_POSTFIELDS, c->body != NULL ? c->body : "");
        }
        if (strcmp(c->method, "POST") != 0) {
            SET(CURLOPT_CUSTOMREQUEST, c->method);
        }
    }
#undef SET
    return res;
}

/* Start one request (see httpc.h). Validation failures return NULL with *errp; a failure
 * of libcurl itself after that is reported through fn from a zero-delay event, so fn is
 * never called from here. */
struct httpc_call *
httpc_start(const struct httpc_request *rq, httpc_done_fn fn, void *arg, char **errp)
{
    struct httpc_call *c;
    char *host = NULL;
    size_t max_response = rq->max_response > 0 ? rq->max_response : HTTPC_DEFAULT_MAX_RESPONSE;
    CURLcode res;

    if (hc.multi == NULL) {
        kg_err(errp, "httpc not initialized");
        return NULL;
    }
    if (check_method(rq->method) == -1) {
        kg_err(errp, "invalid HTTP method");
        return NULL;
    }
    if (rq->url == NULL || check_url(rq->url, &host, errp) == -1) {
        if (rq->url == NULL) {
            kg_err(errp, "no URL");
        }
        return NULL;
    }
    if (rq->body == NULL && rq->body_len > 0) {
        free(host);
        kg_err(errp, "body_len without a body");
        return NULL;
    }
    for (size_t i = 0; rq->headers != NULL && rq->headers[i] != NULL; i++) {
        if (strpbrk(rq->headers[i], "\r\n") != NULL || strchr(rq->headers[i], ':') == NULL) {
            free(host);
            kg_err(errp, "invalid request header line");
            return NULL;
        }
    }

    c = xcalloc(1, sizeof(*c));
    c->method = xstrdup(rq->method);
    c->host = host;
    c->origin = origin_of(rq->url);
    c->fn = fn;
    c->arg = arg;
    c->start_us = util_mono_us();
    buf_init(&c->resp, max_response);
    if (rq->body != NULL) {
        c->body = xmalloc(rq->body_len + 1);
        memcpy(c->body, rq->body, rq->body_len);
        c->body[rq->body_len] = '\0';
    }
    for (size_t i = 0; rq->headers != NULL && rq->headers[i] != NULL; i++) {
        struct curl_slist *l = curl_slist_append(c->headers, rq->headers[i]);

        if (l == NULL) {
            c->fail = xstrdup("out of memory");
            break;
        }
        c->headers = l;
    }
    if (c->fail == NULL) {
        /* No "Expect: 100-continue" round trip before large bodies. */
        struct curl_slist *l = curl_slist_append(c->headers, "Expect:");

        if (l == NULL) {
            c->fail = xstrdup("out of memory");
        } else {
            c->headers = l;
        }
    }
    if (c->fail == NULL && (c->easy = curl_easy_init()) == NULL) {
        c->fail = xstrdup("curl_easy_init failed");
    }
    if (c->fail == NULL && (res = call_setup(c, rq, max_response)) != CURLE_OK) {
        c->fail = xasprintf("curl setup: %s", curl_easy_strerror(res));
    }
    hc.n++;
    if (c->fail != NULL) {
        c->state = HTTPC_DONE;
        list_push(&hc.done, c);
        event_active(hc.deliver, 0, 0);
    } else if (hc.queued.head != NULL || !slot_free(c->origin)) {
        c->state = HTTPC_QUEUED; /* behind the calls already waiting */
        list_push(&hc.queued, c);
        promote();
    } else {
        activate(c);
    }
    log_debug("httpc.start method=%s host=%s", c->method, c->host);
    return c;
}

/* Abandon c: its easy handle leaves the multi handle (the connection may be closed) and
 * is freed; the callback will not run. Ignored for a call whose callback is running. */
void
httpc_cancel(struct httpc_call *c)
{
    if (c == NULL || c->state == HTTPC_DELIVERING) {
        return;
    }
    if (c->state == HTTPC_ACTIVE) {
        list_unlink(&hc.active, c);
        curl_multi_remove_handle(hc.multi, c->easy);
    } else if (c->state == HTTPC_QUEUED) {
        list_unlink(&hc.queued, c);
    } else {
        list_unlink(&hc.done, c);
    }
    hc.n--;
    log_debug("httpc.cancel method=%s host=%s", c->method, c->host);
    call_free(c);
    promote();
}

int
httpc_in_flight(void)
{
    return hc.n;
}

/* ---- mail (SMTP submission) ---- */

/* The message text, in pieces as libcurl asks for it. */
static size_t
mail_read_cb(char *p, size_t size, size_t nmemb, void *userp)
{
    struct httpc_call *c = userp;
    size_t n = size * nmemb, left = c->body_len - c->sent;

    if (n > left) {
        n = left;
    }
    memcpy(p, c->body + c->sent, n);
    c->sent += n;
    return n;
}

/* Submit one message (see httpc.h). The same queue, connection slots, timeout and
 * delivery as an HTTP call; TLS is always required: smtps:// (implicit TLS) or smtp://
 * with STARTTLS (a server that does not offer it fails the transfer). */
struct httpc_call *
httpc_send_mail(const struct httpc_mail *m, httpc_done_fn fn, void *arg, char **errp)
{
    struct httpc_call *c;
    CURLU *u;
    char *scheme = NULL, *host = NULL;
    CURLcode res = CURLE_OK;
    double timeout = m->timeout > 0 ? m->timeout : HTTPC_DEFAULT_TIMEOUT;

    if (hc.multi == NULL) {
        kg_err(errp, "httpc not initialized");
        return NULL;
    }
    u = curl_url();
    if (u == NULL || m->url == NULL || curl_url_set(u, CURLUPART_URL, m->url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        (strcmp(scheme, "smtp") != 0 && strcmp(scheme, "smtps") != 0)) {
        curl_free(scheme);
        curl_free(host);
        curl_url_cleanup(u);
        kg_err(errp, "the mail server URL must be smtp:// (STARTTLS) or smtps:// (TLS)");
        return NULL;
    }
    c = xcalloc(1, sizeof(*c));
    c->mail = 1;
    c->method = xstrdup("SMTP");
    c->host = xstrdup(host);
    c->origin = origin_of(m->url);
    c->fn = fn;
    c->arg = arg;
    c->start_us = util_mono_us();
    buf_init(&c->resp, 4096);
    c->body = xmalloc(m->body_len + 1);
    memcpy(c->body, m->body, m->body_len);
    c->body[m->body_len] = '\0';
    c->body_len = m->body_len;
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    for (size_t i = 0; m->rcpt[i] != NULL; i++) {
        struct curl_slist *l = curl_slist_append(c->rcpts, m->rcpt[i]);

        if (l == NULL) {
            c->fail = xstrdup("out of memory");
            break;
        }
        c->rcpts = l;
    }
    if (c->fail == NULL && (c->easy = curl_easy_init()) == NULL) {
        c->fail = xstrdup("curl_easy_init failed");
    }
    if (c->fail == NULL) {
        CURL *e = c->easy;

#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (res == CURLE_OK) {                                                                     \
            res = curl_easy_setopt(e, opt, val);                                                   \
        }                                                                                          \
    } while (0)
        SET(CURLOPT_URL, m->url);
        SET(CURLOPT_PRIVATE, (void *)c);
        SET(CURLOPT_ERRORBUFFER, c->errbuf);
        SET(CURLOPT_NOSIGNAL, 1L);
        SET(CURLOPT_PROTOCOLS_STR, "smtp,smtps");
        SET(CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
        SET(CURLOPT_SSL_VERIFYPEER, 1L);
        SET(CURLOPT_SSL_VERIFYHOST, 2L);
        SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
        SET(CURLOPT_SSL_CIPHER_LIST, HTTPC_TLS12_CIPHERS);
        SET(CURLOPT_TLS13_CIPHERS, HTTPC_TLS13_CIPHERS);
        if (m->ca_file != NULL) {
            SET(CURLOPT_CAINFO, m->ca_file);
        }
        SET(CURLOPT_PROXY, "");
        SET(CURLOPT_NOPROXY, "");
        SET(CURLOPT_FRESH_CONNECT, 1L); /* never a message resent by libcurl itself */
        SET(CURLOPT_TIMEOUT_MS, (long)(timeout * 1000.0));
        if (m->user != NULL) {
            SET(CURLOPT_USERNAME, m->user);
            SET(CURLOPT_PASSWORD, m->password != NULL ? m->password : "");
        }
        SET(CURLOPT_MAIL_FROM, m->from);
        SET(CURLOPT_MAIL_RCPT, c->rcpts);
        SET(CURLOPT_UPLOAD, 1L);
        SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)c->body_len);
        SET(CURLOPT_READFUNCTION, mail_read_cb);
        SET(CURLOPT_READDATA, (void *)c);
        SET(CURLOPT_WRITEFUNCTION, write_cb);
        SET(CURLOPT_WRITEDATA, (void *)c);
#undef SET
        if (res != CURLE_OK) {
            c->fail = xasprintf("curl setup: %s", curl_easy_strerror(res));
        }
    }
    hc.n++;
    if (c->fail != NULL) {
        c->state = HTTPC_DONE;
        list_push(&hc.done, c);
        event_active(hc.deliver, 0, 0);
    } else if (hc.queued.head != NULL || !slot_free(c->origin)) {
        c->state = HTTPC_QUEUED;
        list_push(&hc.queued, c);
        promote();
    } else {
        activate(c);
    }
    log_debug("httpc.start method=SMTP host=%s", c->host);
    return c;
}
