/* mock_http.c: the mock's own small HTTP/1.1 server (keep-alive, pipelining in order,
 * TLS through bufferevent_openssl), able to hold an answer for a while or to close a
 * connection without answering, which fault injection needs. Heads are parsed with the
 * engine's http_parse_head(). */
#include "tests/mock/mock.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <openssl/err.h>

#include "engine/log.h"

#define MHTTP_MAX_HEAD (64 * 1024)
#define MHTTP_MAX_BODY (4 * 1024 * 1024)

struct mhttp_server {
    struct event_base *base;
    SSL_CTX *ssl;
    struct evconnlistener *lev;
    mhttp_handler fn;
    void *arg;
    struct mhttp_conn *conns;
    int port;
};

struct mhttp_conn {
    struct mhttp_server *srv;
    struct mhttp_conn *prev, *next;
    struct bufferevent *bev;
    struct http_head head;
    int have_head;
    size_t body_need;
    int busy;     /* a held answer is waiting for its timer */
    int closing;  /* close once the output has drained */
    int drop_now; /* close without writing anything more */
    int in_cb;    /* inside conn_process: freeing is deferred */
    int dead;     /* free when conn_process unwinds */
    struct event *timer;
    struct evbuffer *held; /* the held answer (NULL for a held drop) */
    int held_close;
    char peer[64];
};

static void conn_process(struct mhttp_conn *c);

static const char *
reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
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
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Status";
    }
}

/* ---- requests ---- */

static void
req_free(struct mhttp_req *req)
{
    http_head_free(&req->head);
    free(req->path);
    free(req->raw_path);
    free(req->query);
    free(req->body);
    for (size_t i = 0; i < req->nparams; i++) {
        free(req->pnames[i]);
        free(req->pvalues[i]);
    }
    free(req->pnames);
    free(req->pvalues);
    free(req);
}

static void
req_parse_params(struct mhttp_req *req)
{
    http_parse_query(req->query, &req->pnames, &req->pvalues, &req->nparams);
}

const char *
mhttp_header(const struct mhttp_req *req, const char *name)
{
    return http_head_get(&req->head, name);
}

const char *
mhttp_param(const struct mhttp_req *req, const char *name)
{
    for (size_t i = 0; i < req->nparams; i++) {
        if (strcmp(req->pnames[i], name) == 0) {
            return req->pvalues[i];
        }
    }
    return NULL;
}

/* ---- connections ---- */

static void
conn_free(struct mhttp_conn *c)
{
    struct mhttp_server *srv = c->srv;

    if (c->in_cb) {
        c->dead = 1;
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        return;
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        srv->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    http_head_free(&c->head);
    if (c->held != NULL) {
        evbuffer_free(c->held);
    }
    event_free(c->timer);
    bufferevent_free(c->bev);
    free(c);
}

/* Format an answer into out. */
static void
format_answer(struct evbuffer *out, int status, const char *headers, const char *ctype,
              const char *body, size_t len, int close)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    int no_body = status == 204 || status == 304 || status < 200;

    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nDate: %s\r\n", status, reason(status), date);
    if (headers != NULL) {
        evbuffer_add(out, headers, strlen(headers));
    }
    if (!no_body) {
        if (ctype != NULL) {
            evbuffer_add_printf(out, "Content-Type: %s\r\n", ctype);
        }
        evbuffer_add_printf(out, "Content-Length: %zu\r\n", len);
    }
    if (close) {
        evbuffer_add(out, "Connection: close\r\n", 19);
    }
    evbuffer_add(out, "\r\n", 2);
    if (!no_body && len > 0) {
        evbuffer_add(out, body, len);
    }
}

/* A protocol-level error: answer and close. */
static void
conn_fail(struct mhttp_conn *c, int status, const char *msg)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "{\"error\":{\"code\":\"BadRequest\",\"message\":\"%s\"}}",
                     msg);

    c->closing = 1;
    bufferevent_disable(c->bev, EV_READ);
    format_answer(bufferevent_get_output(c->bev), status, NULL, "application/json", body, (size_t)n,
                  1);
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mhttp_conn *c = arg;

    (void)fd;
    (void)what;
    c->busy = 0;
    if (c->held == NULL) { /* a held drop */
        conn_free(c);
        return;
    }
    if (c->held_close) {
        c->closing = 1;
        bufferevent_disable(c->bev, EV_READ);
    }
    /* A TLS write error may run the event callback right here: defer its free. */
    c->in_cb++;
    bufferevent_write_buffer(c->bev, c->held);
    c->in_cb--;
    evbuffer_free(c->held);
    c->held = NULL;
    if (c->dead) {
        c->dead = 0;
        conn_free(c);
        return;
    }
    conn_process(c);
}

void
mhttp_respond(struct mhttp_req *req, int status, const char *headers, const char *ctype,
              const char *body, size_t len, int delay_ms)
{
    struct mhttp_conn *c = req->conn;
    int close = !req->head.keep_alive;

    req->answered = 1;
    if (body == NULL) {
        len = 0;
    }
    if (delay_ms > 0) {
        struct timeval tv = { delay_ms / 1000, (delay_ms % 1000) * 1000 };

        c->held = evbuffer_new();
        format_answer(c->held, status, headers, ctype, body, len, close);
        c->held_close = close;
        c->busy = 1;
        evtimer_add(c->timer, &tv);
        return;
    }
    if (close) {
        c->closing = 1;
        bufferevent_disable(c->bev, EV_READ);
    }
    format_answer(bufferevent_get_output(c->bev), status, headers, ctype, body, len, close);
}

void
mhttp_drop(struct mhttp_req *req, int delay_ms)
{
    struct mhttp_conn *c = req->conn;

    req->answered = 1;
    if (delay_ms > 0) {
        struct timeval tv = { delay_ms / 1000, (delay_ms % 1000) * 1000 };

        c->busy = 1;
        evtimer_add(c->timer, &tv);
        return;
    }
    c->drop_now = 1;
}

/* Build the request from the parsed head and body bytes in the input; hand it over. */
static void
conn_dispatch(struct mhttp_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct mhttp_req *req = xcalloc(1, sizeof(*req));
    const char *target, *q;

    req->conn = c;
    req->head = c->head;
    memset(&c->head, 0, sizeof(c->head));
    c->have_head = 0;
    req->body = xmalloc(c->body_need + 1);
    if (c->body_need > 0) {
        evbuffer_remove(in, req->body, c->body_need);
    }
    req->body[c->body_need] = '\0';
    req->body_len = c->body_need;
    c->body_need = 0;
    snprintf(req->peer, sizeof(req->peer), "%s", c->peer);
    target = req->head.target;
    q = strchr(target, '?');
    req->raw_path = q != NULL ? xstrndup(target, (size_t)(q - target)) : xstrdup(target);
    req->query = q != NULL ? xstrdup(q + 1) : NULL;
    req->path = http_url_decode(req->raw_path, strlen(req->raw_path), 0);
    if (req->path == NULL) {
        req_free(req);
        conn_fail(c, 400, "malformed percent-escape in path");
        return;
    }
    req_parse_params(req);
    c->srv->fn(req, c->srv->arg);
    if (!req->answered) {
        log_warn("mock.unanswered path=%s", log_quote(req->path));
        mhttp_respond(req, 500, NULL, "application/json", "{}", 2, 0);
    }
    req_free(req);
}

/* Parse and dispatch every complete request in the input, one at a time, until a held
 * answer or the end of the buffered bytes. */
static void
conn_process(struct mhttp_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);

    c->in_cb++;
    while (!c->busy && !c->closing && !c->drop_now && !c->dead) {
        if (!c->have_head) {
            size_t len = evbuffer_get_length(in);
            size_t n = len < MHTTP_MAX_HEAD ? len : MHTTP_MAX_HEAD;
            char *err = NULL;
            int r;

            if (len == 0) {
                break;
            }
            r = http_parse_head((const char *)evbuffer_pullup(in, (ev_ssize_t)n), n, MHTTP_MAX_HEAD,
                                &c->head, &err);
            if (r < 0) {
                conn_fail(c, 400, "malformed request head");
                free(err);
                break;
            }
            if (r == 0) {
                break;
            }
            evbuffer_drain(in, (size_t)r);
            c->have_head = 1;
            if (c->head.chunked) {
                conn_fail(c, 411, "chunked request bodies are not supported by the mock");
                break;
            }
            if (c->head.content_length > MHTTP_MAX_BODY) {
                conn_fail(c, 413, "request body too large");
                break;
            }
            c->body_need = c->head.content_length > 0 ? (size_t)c->head.content_length : 0;
            if (c->body_need > 0 && evbuffer_get_length(in) == 0 && c->head.minor == 1) {
                const char *expect = NULL;

                for (size_t i = 0; i < c->head.nheaders; i++) {
                    if (strcasecmp(c->head.names[i], "Expect") == 0) {
                        expect = c->head.values[i];
                    }
                }
                /* libcurl waits a second for this before sending a larger body */
                if (expect != NULL && strcasecmp(expect, "100-continue") == 0) {
                    evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n",
                                 25);
                }
            }
        }
        if (evbuffer_get_length(in) < c->body_need) {
            break;
        }
        conn_dispatch(c);
    }
    c->in_cb--;
    if (c->drop_now || (c->dead && c->in_cb == 0)) {
        c->dead = 0;
        conn_free(c);
        return;
    }
    if (c->closing && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        conn_free(c);
    }
}

static void
conn_read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_process(arg);
}

static void
conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct mhttp_conn *c = arg;

    (void)bev;
    if (c->closing) {
        conn_free(c);
    }
}

static void
conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct mhttp_conn *c = arg;

    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        return;
    }
    ERR_clear_error();
    conn_free(c);
}

static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    struct mhttp_server *srv = arg;
    struct bufferevent *bev;
    struct mhttp_conn *c;
    int one = 1;

    (void)lev;
    (void)salen;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (srv->ssl != NULL) {
        SSL *ssl = SSL_new(srv->ssl);

        if (ssl == NULL) {
            evutil_closesocket(fd);
            return;
        }
        bev = bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
        if (bev != NULL) {
            bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        }
    } else {
        bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (bev == NULL) {
        evutil_closesocket(fd);
        return;
    }
    c = xcalloc(1, sizeof(*c));
    c->srv = srv;
    c->bev = bev;
    c->head.content_length = -1;
    c->timer = evtimer_new(srv->base, conn_timer_cb, c);
    if (c->timer == NULL) {
        abort();
    }
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, c->peer, sizeof(c->peer));
    } else if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, c->peer, sizeof(c->peer));
    }
    c->next = srv->conns;
    if (srv->conns != NULL) {
        srv->conns->prev = c;
    }
    srv->conns = c;
    bufferevent_setcb(bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

struct mhttp_server *
mhttp_new(struct event_base *base, SSL_CTX *ssl_ctx, mhttp_handler fn, void *arg)
{
    struct mhttp_server *srv = xcalloc(1, sizeof(*srv));

    srv->base = base;
    srv->ssl = ssl_ctx;
    srv->fn = fn;
    srv->arg = arg;
    return srv;
}

/* Listen on "host:port" (IPv4 or "[v6]:port"); port 0 picks a free one. */
int
mhttp_listen(struct mhttp_server *srv, const char *addr, char **errp)
{
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    struct evconnlistener *lev;

    const char *colon = strrchr(addr, ':');
    char host[64];
    char *end;
    long port;

    memset(&ss, 0, sizeof(ss));
    if (colon == NULL || (size_t)(colon - addr) >= sizeof(host)) {
        return kg_err(errp, "bad listen address %s (want host:port)", addr);
    }
    port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 0 || port > 65535) {
        return kg_err(errp, "bad port in %s", addr);
    }
    if (addr[0] == '[' && colon > addr && colon[-1] == ']') {
        snprintf(host, sizeof(host), "%.*s", (int)(colon - addr - 2), addr + 1);
    } else {
        snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
    }
    {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

        if (inet_pton(AF_INET, host[0] != '\0' ? host : "0.0.0.0", &s4->sin_addr) == 1) {
            s4->sin_family = AF_INET;
            s4->sin_port = htons((uint16_t)port);
            sslen = sizeof(*s4);
        } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
            s6->sin6_family = AF_INET6;
            s6->sin6_port = htons((uint16_t)port);
            sslen = sizeof(*s6);
        } else {
            return kg_err(errp, "bad host in %s (an IP address is needed)", addr);
        }
    }
    lev = evconnlistener_new_bind(srv->base, accept_cb, srv,
                                  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 128,
                                  (struct sockaddr *)&ss, sslen);
    if (lev == NULL) {
        return kg_err(errp, "cannot listen on %s", addr);
    }
    srv->lev = lev;
    {
        struct sockaddr_storage bound;
        socklen_t blen = sizeof(bound);

        if (getsockname(evconnlistener_get_fd(lev), (struct sockaddr *)&bound, &blen) == 0) {
            srv->port = bound.ss_family == AF_INET6
                            ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                            : ntohs(((struct sockaddr_in *)&bound)->sin_port);
        }
    }
    return 0;
}

int
mhttp_port(const struct mhttp_server *srv)
{
    return srv->port;
}

void
mhttp_free(struct mhttp_server *srv)
{
    if (srv == NULL) {
        return;
    }
    if (srv->lev != NULL) {
        evconnlistener_free(srv->lev);
    }
    while (srv->conns != NULL) {
        srv->conns->in_cb = 0;
        conn_free(srv->conns);
    }
    free(srv);
}
