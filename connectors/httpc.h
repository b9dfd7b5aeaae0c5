/* httpc.h: asynchronous HTTP client on libcurl's multi-socket interface, driven by the
 * engine's libevent loop. One httpc_start() is one attempt: retries, rate limits and
 * circuit breaking are the caller's (connectors/call.c). TLS verification is always on. */
#ifndef KAGARI_HTTPC_H
#define KAGARI_HTTPC_H

#include <stddef.h>

#include <event2/event.h>

#include "engine/kagari.h"

struct httpc_call;

struct httpc_request {
    const char *method;         /* "GET", "POST", "PATCH", "DELETE" */
    const char *url;            /* absolute https:// (http:// only for loopback hosts) */
    const char *const *headers; /* NULL-terminated "Name: value" lines; may be NULL */
    const char *body;           /* may be NULL */
    size_t body_len;
    double timeout;      /* seconds for the whole transfer; 0 = 30 */
    const char *ca_file; /* PEM bundle to verify the server; NULL = system default */
    const char *proxy;   /* "http://proxy:3128"; NULL = none (env vars are ignored) */
    size_t max_response; /* bytes; 0 = 16 MiB; over it the call fails */
    /* 1: a request that is not safe to repeat. It gets a connection of its own, so a
     * reused connection that closes before any answer cannot leave it in doubt. For
     * every request, once or not, libcurl's own resend over a fresh connection is
     * refused: the call fails ("closed before any answer") and only the caller decides
     * to resend, so its attempts and error counts see every lost answer. */
    int once;
};

struct httpc_response {
    int status;        /* HTTP status; 0 when the transfer failed (see error) */
    const char *error; /* transport error text (DNS, connect, TLS, timeout), or NULL */
    int timed_out;     /* the transfer hit its timeout */
    const char *body;  /* NUL-terminated, may be empty */
    size_t body_len;
    const char *retry_after; /* the Retry-After header value, or NULL */
    const char *content_type;
    const char *request_id; /* request-id / client-request-id header, or NULL */
    double elapsed_ms;
};

/* Called exactly once per started call, from the event loop (never from inside
 * httpc_start). Everything in resp is borrowed for the duration of the callback. */
typedef void (*httpc_done_fn)(void *arg, const struct httpc_response *resp);

/* Set up libcurl's multi handle on base. Connections are reused across calls; HTTP/2
 * is used where the server offers it. */
int httpc_init(struct event_base *base, char **errp) KG_WUR;
/* Cancel every call in flight (their callbacks are not called) and free everything. */
void httpc_shutdown(void);

/* Start one request. Returns a handle (owned by httpc until done or cancelled) or NULL
 * with *errp for a request that cannot start (bad URL, plain http to a non-loopback
 * host). The request's strings are copied. */
struct httpc_call *httpc_start(const struct httpc_request *rq, httpc_done_fn fn, void *arg,
                               char **errp);
/* Abandon a call in flight: its callback will not be called. */
void httpc_cancel(struct httpc_call *c);

int httpc_in_flight(void);

/* One mail submission over SMTP with TLS: url is smtps://host:port (implicit TLS) or
 * smtp://host:port (STARTTLS, required). Authenticates when user is set. rcpt is a
 * NULL-terminated list of envelope addresses ("<a@example.jp>"); body is the whole RFC
 * 5322 message with CRLF line ends. The callback gets status 250 (or the server's last
 * reply code) and error NULL when the server accepted the message; error set (and
 * status the server's reply code, or 0) when it did not. Strings are copied. */
struct httpc_mail {
    const char *url;
    const char *user;
    const char *password;
    const char *from; /* envelope sender, "<soc@example.jp>" */
    const char *const *rcpt;
    const char *body;
    size_t body_len;
    double timeout;
    const char *ca_file;
};
struct httpc_call *httpc_send_mail(const struct httpc_mail *m, httpc_done_fn fn, void *arg,
                                   char **errp);

#endif
