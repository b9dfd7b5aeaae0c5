/* http.h: a small HTTP/1.1 server on libevent bufferevents, with TLS (OpenSSL) when
 * configured. Built for untrusted clients: separate header, body and idle timeouts,
 * capped header and body sizes, connection caps (in all and per client address), strict
 * CRLF framing, keep-alive and pipelining (one request at a time per connection, in
 * order). Used by the alert intake and the portal. */
#ifndef KAGARI_HTTP_H
#define KAGARI_HTTP_H

#include <stddef.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "engine/util.h"

struct http_server;
struct http_request;

/* A request the server or its handler refused (status 400 and up), for the log. Every
 * string is borrowed for the duration of the callback. */
struct http_reject {
    int status;
    const char *code;       /* "bad_json", "too_large", ... */
    const char *message;    /* the message sent to the client */
    const char *peer;       /* the client's address */
    const char *request_id; /* as sent in X-Request-Id */
    const char *client;     /* who the handler found the client to be, or NULL */
    const char *method;     /* NULL when the request line was not read */
    const char *path;       /* likewise; decoded */
    /* The request when its head was read (its headers may name the client), else
     * NULL. Borrowed for the callback only; never replied to from it. */
    struct http_request *req;
};

struct http_config {
    size_t max_header_bytes; /* request line + headers; default 16 KiB; over: 431 */
    size_t max_body_bytes;   /* default 4 MiB; over: 413, connection closed */
    int max_conns;           /* default 1024; over: 503 with Retry-After, and close */
    int max_conns_per_peer;  /* from one client address; default 64; over: the same 503 */
    double header_timeout;   /* seconds to receive the whole head; default 10; then 408 */
    double body_timeout;     /* seconds to receive the whole body; default 30; then 408 */
    double idle_timeout;     /* keep-alive idle seconds; default 60; then close */
    double write_timeout;    /* seconds for the client to take the reply; default 30 */
    SSL_CTX *ssl_ctx;        /* NULL: plain HTTP; else TLS (borrowed, caller frees) */
    /* Called for every error answer (http_reply_error, and the server's own 4xx/5xx:
     * malformed requests, 413, 431, 408, connection caps); NULL: the server logs its own
     * as http.error. */
    void (*on_reject)(const struct http_reject *rej, void *arg);
    void *reject_arg;
};

/* Called once per complete request. The request stays valid until http_reply() is
 * called on it, which must happen exactly once (possibly later, from another callback).
 * When the client goes away first, the reply is discarded, not an error. */
typedef void (*http_handler)(struct http_request *req, void *arg);

/* Fields left 0/NULL in cfg take their defaults. */
struct http_server *http_server_new(struct event_base *base, const struct http_config *cfg,
                                    http_handler handler, void *arg);
/* Listen on "127.0.0.1:8080", "[::1]:0", "0.0.0.0:443", ":8080" (all IPv4). Port 0 picks
 * a free port; http_server_port() tells which. May be called more than once. */
int http_server_listen(struct http_server *srv, const char *addr, char **errp) KG_WUR;
int http_server_port(const struct http_server *srv); /* first listener's port */
/* Stop accepting (drain); open connections finish their current request and close. */
void http_server_stop_accepting(struct http_server *srv);
int http_server_conns(const struct http_server *srv); /* open connections */
/* Connections refused by max_conns or max_conns_per_peer since the start. */
unsigned long long http_server_refused(const struct http_server *srv);
void http_server_free(struct http_server *srv); /* closes everything; NULL is a no-op */

/* Request accessors; all strings are borrowed from the request. */
const char *http_request_method(const struct http_request *req); /* "POST" */
const char *http_request_path(const struct http_request *req);   /* decoded, no query */
const char *http_request_query(const struct http_request *req);  /* raw, NULL when none */
/* Value of the query parameter (decoded), or NULL. */
const char *http_request_param(struct http_request *req, const char *name);
const char *http_request_header(const struct http_request *req, const char *name); /* any case */
const char *http_request_body(const struct http_request *req, size_t *len);
const char *http_request_peer(const struct http_request *req); /* "127.0.0.1" */
/* The request's id, unique in the process ("1f3a9c0e-0000002a": a random prefix per
 * server and a counter). Every response carries it as X-Request-Id, error answers the
 * server sends by itself included. */
const char *http_request_id(const struct http_request *req);
/* Name the client for the log (a tenant, once its token is known): on_reject gets it.
 * Copied (at most 63 bytes). */
void http_request_set_client(struct http_request *req, const char *name);

/* Add a response header (before http_reply). */
void http_reply_header(struct http_request *req, const char *name, const char *value);
/* Send the response and release the request. Content-Length is set; body may be NULL. */
void http_reply(struct http_request *req, int status, const char *content_type, const char *body,
                size_t len);
/* Convenience: {"error":code,"message":message} as application/json. */
void http_reply_error(struct http_request *req, int status, const char *code, const char *message);

/* The request-head parser, separate so it can be fuzzed: parses "METHOD target
 * HTTP/1.x\r\n" + headers + "\r\n" from buf. Returns the head's length when complete, 0
 * when more bytes are needed, -1 with *errp on a malformed head. */
struct http_head {
    char method[16];
    char *target; /* malloc'd */
    int minor;    /* HTTP/1.minor */
    size_t nheaders;
    char **names; /* malloc'd array of malloc'd strings */
    char **values;
    long long content_length; /* -1 when absent */
    int chunked;
    int keep_alive;
};
int http_parse_head(const char *buf, size_t len, size_t max, struct http_head *h, char **errp);
/* Decode %XX escapes of s[0..n) into a new string (malloc'd); with plus, '+' becomes a
 * space (form encoding). NULL on a malformed escape or on %00. */
char *http_url_decode(const char *s, size_t n, int plus);
/* Append the decoded name=value pairs of a query string (form encoding) to the
 * malloc'd arrays *names and *values (count *n). Pairs with a malformed escape or %00 are
 * skipped; "name" alone has the value "". q may be NULL. */
void http_parse_query(const char *q, char ***names, char ***values, size_t *n);
void http_head_free(struct http_head *h);
/* A header's value in a parsed head (name in any case), or NULL. */
const char *http_head_get(const struct http_head *h, const char *name);

#endif
