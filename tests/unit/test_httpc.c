/* test_httpc.c: the libcurl client against the engine's own HTTP server (plain and TLS)
 * and a raw socket server, all on 127.0.0.1 in this process and on one event_base,
 * driven with event_base_loop(EVLOOP_ONCE) until the callbacks arrive. */
#include "connectors/httpc.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "engine/http.h"
#include "engine/log.h"
#include "engine/util.h"
#include "tests/unit/test.h"

/* ---- the server side ---- */

#define MAX_HELD 8

struct srv {
    struct http_server *http;
    struct http_server *tls;
    SSL_CTX *ssl_ctx;
    int port;
    int tls_port;
    int requests;
    int max_conns; /* the most open connections seen by the handler */
    int hung;
    struct http_request *held[MAX_HELD];
};

static struct event_base *base;

/* A reply held for a while (/slow?ms=N). */
struct slow_reply {
    struct http_request *req;
    struct event *ev;
};

static void
slow_fire(evutil_socket_t fd, short what, void *arg)
{
    struct slow_reply *sr = arg;

    (void)fd;
    (void)what;
    http_reply(sr->req, 200, "text/plain", "slow", 4);
    event_free(sr->ev);
    free(sr);
}

/* The test server: /echo tells what it got; /slow?ms=N answers after N ms; /status?code=N answers N
 * (429 and 503 with Retry-After); /big?n=N answers N bytes; /hang never answers. */
static void
handler(struct http_request *req, void *arg)
{
    struct srv *s = arg;
    const char *path = http_request_path(req);
    int conns;

    s->requests++;
    /* The handler cannot tell which server it runs for; both count. */
    conns = http_server_conns(s->http) + (s->tls != NULL ? http_server_conns(s->tls) : 0);
    if (conns > s->max_conns) {
        s->max_conns = conns;
    }
    if (strcmp(path, "/echo") == 0) {
        size_t blen;
        const char *body = http_request_body(req, &blen);
        const char *xt = http_request_header(req, "X-Test");
        const char *ct = http_request_header(req, "Content-Type");
        const char *cl = http_request_header(req, "Content-Length");
        const char *ex = http_request_header(req, "Expect");
        char *out = xasprintf("method=%s x-test=%s ct=%s cl=%s expect=%s body=%.*s",
                              http_request_method(req), xt ? xt : "-", ct ? ct : "-", cl ? cl : "-",
                              ex ? ex : "-", (int)blen, body);

        http_reply_header(req, "request-id", "rid-1");
        http_reply(req, 200, "text/plain", out, strlen(out));
        free(out);
    } else if (strcmp(path, "/status") == 0) {
        const char *p = http_request_param(req, "code");
        int code = p != NULL ? atoi(p) : 500;
        char body[64];

        if (code == 429) {
            http_reply_header(req, "Retry-After", "7");
            http_reply_header(req, "client-request-id", "crid-2");
        } else if (code == 503) {
            http_reply_header(req, "retry-after", "120");
        }
        snprintf(body, sizeof(body), "{\"status\":%d}", code);
        http_reply(req, code, "application/json", body, strlen(body));
    } else if (strcmp(path, "/big") == 0) {
        const char *p = http_request_param(req, "n");
        size_t n = p != NULL ? (size_t)atol(p) : 0;
        char *body = xmalloc(n + 1);

        memset(body, 'x', n);
        http_reply(req, 200, "text/plain", body, n);
        free(body);
    } else if (strcmp(path, "/coded") == 0) {
        /* gzip of {"coded":true}, labelled with the coding ?enc= names */
        static const unsigned char gz[] = { 0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
                                            0xff, 0xab, 0x56, 0x4a, 0xce, 0x4f, 0x49, 0x4d, 0x51,
                                            0xb2, 0x2a, 0x29, 0x2a, 0x4d, 0xad, 0x05, 0x00, 0xc9,
                                            0x07, 0xd4, 0xf5, 0x0e, 0x00, 0x00, 0x00 };
        const char *enc = http_request_param(req, "enc");

        if (enc != NULL) {
            http_reply_header(req, "Content-Encoding", enc);
        }
        http_reply(req, 200, "application/json", (const char *)gz, sizeof(gz));
    } else if (strcmp(path, "/slow") == 0) {
        const char *p = http_request_param(req, "ms");
        long ms = p != NULL ? atol(p) : 1000;
        struct slow_reply *sr = xcalloc(1, sizeof(*sr));
        struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

        sr->req = req;
        sr->ev = evtimer_new(base, slow_fire, sr);
        evtimer_add(sr->ev, &tv);
    } else if (strcmp(path, "/hang") == 0) {
        if (s->hung < MAX_HELD) {
            s->held[s->hung] = req;
        }
        s->hung++;
    } else {
        http_reply_error(req, 404, "not_found", "no such path");
    }
}

/* A self-signed certificate for IP 127.0.0.1 with a new P-256 (or RSA 2048) key, valid
 * for an hour. */
static X509 *
make_cert_kind(EVP_PKEY **keyp, int rsa)
{
    EVP_PKEY *pkey = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name;
    X509V3_CTX v3;
    X509_EXTENSION *ext;

    if (pkey == NULL || x == NULL) {
        EVP_PKEY_free(pkey);
        X509_free(x);
        return NULL;
    }
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pkey);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"kagari test", -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "IP:127.0.0.1");
    if (ext != NULL) {
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
    }
    X509_sign(x, pkey, EVP_sha256());
    *keyp = pkey;
    return x;
}

static X509 *
make_cert(EVP_PKEY **keyp)
{
    return make_cert_kind(keyp, 0);
}

/* Write cert as PEM to a new temp file; returns its malloc'd path. */
static char *
write_pem(X509 *x)
{
    char *path = xstrdup("/tmp/kg-httpc-ca-XXXXXX");
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

    if (f == NULL || PEM_write_X509(f, x) != 1) {
        if (f != NULL) {
            fclose(f);
        }
        free(path);
        return NULL;
    }
    fclose(f);
    return path;
}

/* ---- the client side ---- */

struct res {
    int calls;
    int status;
    int timed_out;
    char *error;
    char *body;
    size_t body_len;
    int nul_terminated;
    char *retry_after;
    char *content_type;
    char *request_id;
    double elapsed_ms;
};

static struct event *ticker;
static struct srv S;
static int in_start; /* set around httpc_start: a callback seeing it was re-entrant */
static int reentered;
static int ndone;

static char *
dup_or_null(const char *s)
{
    return s != NULL ? xstrdup(s) : NULL;
}

static void
on_done(void *arg, const struct httpc_response *r)
{
    struct res *x = arg;

    if (in_start) {
        reentered = 1;
    }
    x->calls++;
    ndone++;
    x->status = r->status;
    x->timed_out = r->timed_out;
    x->error = dup_or_null(r->error);
    x->body_len = r->body_len;
    x->body = xstrndup(r->body, r->body_len);
    x->nul_terminated = r->body[r->body_len] == '\0';
    x->retry_after = dup_or_null(r->retry_after);
    x->content_type = dup_or_null(r->content_type);
    x->request_id = dup_or_null(r->request_id);
    x->elapsed_ms = r->elapsed_ms;
}

static void
res_free(struct res *x)
{
    free(x->error);
    free(x->body);
    free(x->retry_after);
    free(x->content_type);
    free(x->request_id);
    memset(x, 0, sizeof(*x));
}

static struct httpc_call *
start(const struct httpc_request *rq, struct res *x)
{
    struct httpc_call *c;
    char *err = NULL;

    in_start = 1;
    c = httpc_start(rq, on_done, x, &err);
    in_start = 0;
    if (c == NULL) {
        T_FAIL_("httpc_start %s: %s", rq->url, err ? err : "?");
        free(err);
    }
    return c;
}

static void
tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Run the loop one pass at a time until *counter reaches n or ms have passed. The
 * ticker keeps any single pass from blocking long. */
static void
run_until(const int *counter, int n, int ms)
{
    int64_t end = util_mono_us() + (int64_t)ms * 1000;

    while (*counter < n && util_mono_us() < end) {
        event_base_loop(base, EVLOOP_ONCE);
    }
}

static void
run_for(int ms)
{
    int never = 0;

    run_until(&never, 1, ms);
}

static char *
url(const char *path)
{
    return xasprintf("http://127.0.0.1:%d%s", S.port, path);
}

static void
setup_tls(int with_tls, X509 **certp)
{
    struct http_config cfg;
    char *err = NULL;
    struct timeval tv = { 0, 20000 };

    log_set_level(KG_LOG_ERR);
    memset(&S, 0, sizeof(S));
    ndone = 0;
    reentered = 0;
    base = event_base_new();
    ticker = event_new(base, -1, EV_PERSIST, tick, NULL);
    event_add(ticker, &tv);
    memset(&cfg, 0, sizeof(cfg));
    S.http = http_server_new(base, &cfg, handler, &S);
    if (http_server_listen(S.http, "127.0.0.1:0", &err) == -1) {
        T_FAIL_("listen: %s", err);
        free(err);
        err = NULL;
    }
    S.port = http_server_port(S.http);
    if (with_tls) {
        EVP_PKEY *key = NULL;
        X509 *x = make_cert(&key);

        S.ssl_ctx = SSL_CTX_new(TLS_server_method());
        if (x == NULL || S.ssl_ctx == NULL || SSL_CTX_use_certificate(S.ssl_ctx, x) != 1 ||
            SSL_CTX_use_PrivateKey(S.ssl_ctx, key) != 1) {
            T_FAIL_("TLS server context");
        }
        EVP_PKEY_free(key);
        *certp = x;
        cfg.ssl_ctx = S.ssl_ctx;
        S.tls = http_server_new(base, &cfg, handler, &S);
        if (http_server_listen(S.tls, "127.0.0.1:0", &err) == -1) {
            T_FAIL_("listen tls: %s", err);
            free(err);
            err = NULL;
        }
        S.tls_port = http_server_port(S.tls);
    }
    if (httpc_init(base, &err) == -1) {
        T_FAIL_("httpc_init: %s", err);
        free(err);
    }
}

static void
setup(void)
{
    setup_tls(0, NULL);
}

static void
teardown(void)
{
    httpc_shutdown();
    http_server_free(S.http);
    http_server_free(S.tls);
    SSL_CTX_free(S.ssl_ctx);
    event_free(ticker);
    event_base_free(base);
    base = NULL;
    log_set_level(KG_LOG_INFO);
}

/* ---- tests ---- */

static void
test_get_post_echo(void)
{
    struct res r[5];
    const char *hdrs[] = { "X-Test: one", NULL };
    const char *jh[] = { "Content-Type: application/json", "X-Test: two", NULL };
    char *u;
    struct httpc_request rq;

    setup();
    memset(r, 0, sizeof(r));
    u = url("/echo");
    memset(&rq, 0, sizeof(rq));
    rq.method = "GET";
    rq.url = u;
    rq.headers = hdrs;
    start(&rq, &r[0]);
    rq.method = "POST";
    rq.headers = jh;
    rq.body = "{\"a\":1}";
    rq.body_len = 7;
    start(&rq, &r[1]);
    rq.method = "PATCH";
    rq.body = "{\"b\":2}xx"; /* body_len decides, not the NUL */
    start(&rq, &r[2]);
    rq.method = "DELETE";
    rq.headers = NULL;
    rq.body = NULL;
    rq.body_len = 0;
    start(&rq, &r[3]);
    rq.method = "POST";
    start(&rq, &r[4]);
    T_EQ_INT(httpc_in_flight(), 5);
    T_EQ_INT(ndone, 0);
    run_until(&ndone, 5, 5000);
    T_REQUIRE(ndone == 5);

    T_EQ_INT(r[0].status, 200);
    T_ASSERT(r[0].error == NULL);
    T_CONTAINS(r[0].body, "method=GET x-test=one");
    T_CONTAINS(r[0].body, "expect=-");
    T_EQ_STR(r[0].content_type, "text/plain");
    T_EQ_STR(r[0].request_id, "rid-1");
    T_ASSERT(r[0].retry_after == NULL);
    T_ASSERT(r[0].nul_terminated);
    T_EQ_INT(r[0].body_len, strlen(r[0].body));
    T_ASSERT(r[0].elapsed_ms >= 0);

    T_EQ_INT(r[1].status, 200);
    T_CONTAINS(r[1].body, "method=POST x-test=two ct=application/json cl=7");
    T_CONTAINS(r[1].body, "body={\"a\":1}");
    T_CONTAINS(r[2].body, "method=PATCH");
    T_CONTAINS(r[2].body, "body={\"b\":2}");
    T_ASSERT(strstr(r[2].body, "xx") == NULL);
    T_CONTAINS(r[3].body, "method=DELETE");
    T_CONTAINS(r[3].body, "cl=-");
    /* A POST without a body still says Content-Length: 0. */
    T_CONTAINS(r[4].body, "method=POST");
    T_CONTAINS(r[4].body, "cl=0");
    T_EQ_INT(httpc_in_flight(), 0);
    T_EQ_INT(reentered, 0);
    for (int i = 0; i < 5; i++) {
        T_EQ_INT(r[i].calls, 1);
        res_free(&r[i]);
    }
    free(u);
    teardown();
}

static void
test_status_codes(void)
{
    struct res r[4];
    char *u[4];
    struct httpc_request rq;

    setup();
    memset(r, 0, sizeof(r));
    memset(&rq, 0, sizeof(rq));
    u[0] = url("/nothing-here");
    u[1] = url("/status?code=429");
    u[2] = url("/status?code=503");
    u[3] = url("/status?code=204");
    rq.method = "GET";
    for (int i = 0; i < 4; i++) {
        rq.url = u[i];
        start(&rq, &r[i]);
    }
    run_until(&ndone, 4, 5000);
    T_REQUIRE(ndone == 4);
    T_EQ_INT(r[0].status, 404);
    T_ASSERT(r[0].error == NULL);
    T_CONTAINS(r[0].body, "not_found");
    T_EQ_STR(r[0].content_type, "application/json");
    T_EQ_INT(r[1].status, 429);
    T_EQ_STR(r[1].retry_after, "7");
    T_EQ_STR(r[1].request_id, "crid-2");
    T_CONTAINS(r[1].body, "429");
    T_EQ_INT(r[2].status, 503);
    T_EQ_STR(r[2].retry_after, "120");
    T_ASSERT(r[2].error == NULL);
    T_EQ_INT(r[3].status, 204);
    T_EQ_INT(r[3].body_len, 0);
    T_EQ_STR(r[3].body, "");
    for (int i = 0; i < 4; i++) {
        res_free(&r[i]);
        free(u[i]);
    }
    teardown();
}

static void
test_tls(void)
{
    X509 *cert = NULL, *other;
    EVP_PKEY *okey = NULL;
    char *ca, *other_ca, *u, *uhost;
    struct res r[5];
    struct httpc_request rq;
    int base_conns;

    setup_tls(1, &cert);
    T_REQUIRE(cert != NULL);
    memset(r, 0, sizeof(r));
    ca = write_pem(cert);
    other = make_cert(&okey);
    other_ca = write_pem(other);
    T_REQUIRE(ca != NULL && other_ca != NULL);
    u = xasprintf("https://127.0.0.1:%d/echo", S.tls_port);
    uhost = xasprintf("https://localhost:%d/echo", S.tls_port);
    memset(&rq, 0, sizeof(rq));
    rq.method = "POST";
    rq.url = u;
    rq.body = "over tls";
    rq.body_len = 8;
    rq.ca_file = ca;
    start(&rq, &r[0]);
    rq.ca_file = NULL; /* the system's CAs do not know our certificate */
    start(&rq, &r[1]);
    rq.ca_file = other_ca;
    start(&rq, &r[2]);
    rq.ca_file = ca; /* right CA, wrong name: the certificate is for 127.0.0.1 only */
    rq.url = uhost;
    start(&rq, &r[3]);
    run_until(&ndone, 4, 10000);
    T_REQUIRE(ndone == 4);
    T_EQ_INT(r[0].status, 200);
    T_ASSERT(r[0].error == NULL);
    T_CONTAINS(r[0].body, "method=POST");
    T_CONTAINS(r[0].body, "body=over tls");
    for (int i = 1; i < 4; i++) {
        T_EQ_INT(r[i].status, 0);
        T_ASSERT(r[i].error != NULL);
        T_EQ_INT(r[i].timed_out, 0);
        T_EQ_STR(r[i].body, "");
    }
    T_ASSERT(r[1].error != NULL &&
             (strstr(r[1].error, "certificate") != NULL || strstr(r[1].error, "SSL") != NULL));
    T_ASSERT(r[2].error != NULL &&
             (strstr(r[2].error, "certificate") != NULL || strstr(r[2].error, "SSL") != NULL));

    /* A held call over TLS does not hold another back. */
    {
        struct res h, e;
        struct httpc_call *hc;
        char *hang = xasprintf("https://127.0.0.1:%d/hang", S.tls_port);

        memset(&h, 0, sizeof(h));
        memset(&e, 0, sizeof(e));
        rq.url = hang;
        rq.ca_file = ca;
        hc = start(&rq, &h);
        rq.url = u;
        start(&rq, &e);
        ndone = 0;
        run_until(&ndone, 1, 5000);
        T_EQ_INT(e.status, 200);
        T_EQ_INT(h.calls, 0);
        T_EQ_INT(S.hung, 1);
        httpc_cancel(hc);
        res_free(&e);
        free(hang);
        run_for(50);
    }

    /* Sequential calls over TLS reuse one connection. */
    rq.url = u;
    rq.ca_file = ca;
    S.max_conns = 0;
    /* The server may still hold the cancelled call's connection. */
    base_conns = http_server_conns(S.tls);
    T_ASSERT(base_conns >= 1 && base_conns <= 2);
    for (int i = 0; i < 5; i++) {
        struct res x;

        memset(&x, 0, sizeof(x));
        ndone = 0;
        start(&rq, &x);
        run_until(&ndone, 1, 5000);
        T_EQ_INT(x.status, 200);
        res_free(&x);
    }
    T_EQ_INT(S.max_conns, base_conns);
    T_EQ_INT(http_server_conns(S.tls), base_conns);

    for (int i = 0; i < 5; i++) {
        res_free(&r[i]);
    }
    unlink(ca);
    unlink(other_ca);
    free(ca);
    free(other_ca);
    free(u);
    free(uhost);
    X509_free(cert);
    X509_free(other);
    EVP_PKEY_free(okey);
    teardown();
}

static void
test_timeout(void)
{
    struct res r;
    char *u;
    struct httpc_request rq;

    setup();
    u = url("/hang");
    memset(&r, 0, sizeof(r));
    memset(&rq, 0, sizeof(rq));
    rq.method = "GET";
    rq.url = u;
    rq.timeout = 0.3;
    start(&rq, &r);
    run_until(&ndone, 1, 5000);
    T_REQUIRE(ndone == 1);
    T_EQ_INT(S.hung, 1);
    T_EQ_INT(r.status, 0);
    T_EQ_INT(r.timed_out, 1);
    T_ASSERT(r.error != NULL);
    T_ASSERT(r.elapsed_ms >= 250);
    T_ASSERT(r.elapsed_ms < 3000);
    res_free(&r);
    free(u);
    teardown();
}

/* ---- a raw server: a response without Content-Length, streamed until close ---- */

struct raw {
    struct evconnlistener *lev;
    int port;
    size_t size; /* body bytes to send */
};

static void
raw_write_cb(struct bufferevent *bev, void *arg)
{
    (void)arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        bufferevent_free(bev);
    }
}

static void
raw_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)what;
    (void)arg;
    bufferevent_free(bev);
}

static void
raw_read_cb(struct bufferevent *bev, void *arg)
{
    struct raw *rw = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                               "Connection: close\r\n\r\n";
    char *body;

    if (p.pos < 0) {
        return;
    }
    evbuffer_drain(in, evbuffer_get_length(in));
    body = xmalloc(rw->size);
    memset(body, 'y', rw->size);
    bufferevent_write(bev, head, sizeof(head) - 1);
    bufferevent_write(bev, body, rw->size);
    free(body);
    bufferevent_setcb(bev, NULL, raw_write_cb, raw_event_cb, rw);
}

static void
raw_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);

    (void)lev;
    (void)sa;
    (void)len;
    bufferevent_setcb(bev, raw_read_cb, NULL, raw_event_cb, arg);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static int
raw_listen(struct raw *rw)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rw->lev =
        evconnlistener_new_bind(base, raw_accept, rw, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                                (struct sockaddr *)&sin, sizeof(sin));
    if (rw->lev == NULL) {
        return -1;
    }
    getsockname(evconnlistener_get_fd(rw->lev), (struct sockaddr *)&sin, &sl);
    rw->port = ntohs(sin.sin_port);
    return 0;
}

static void
test_max_response(void)
{
    struct res r[4];
    char *u[2];
    char *raw_url;
    struct httpc_request rq;
    struct raw rw;

    setup();
    memset(r, 0, sizeof(r));
    memset(&rq, 0, sizeof(rq));
    memset(&rw, 0, sizeof(rw));
    rw.size = 200000;
    T_REQUIRE(raw_listen(&rw) == 0);
    u[0] = url("/big?n=100000");
    u[1] = url("/big?n=1000");
    raw_url = xasprintf("http://127.0.0.1:%d/stream", rw.port);
    rq.method = "GET";
    rq.max_response = 1000;
    rq.url = u[0]; /* Content-Length over the cap */
    start(&rq, &r[0]);
    rq.url = u[1]; /* exactly the cap */
    start(&rq, &r[1]);
    rq.url = raw_url; /* no length: the cap is hit while the body streams */
    start(&rq, &r[2]);
    rq.max_response = 0; /* default 16 MiB: the whole stream */
    start(&rq, &r[3]);
    run_until(&ndone, 4, 5000);
    T_REQUIRE(ndone == 4);
    T_EQ_INT(r[0].status, 0);
    T_CONTAINS(r[0].error, "larger than 1000");
    T_EQ_INT(r[1].status, 200);
    T_EQ_INT(r[1].body_len, 1000);
    T_EQ_INT(r[2].status, 0);
    T_CONTAINS(r[2].error, "larger than 1000");
    T_EQ_INT(r[2].body_len, 0);
    T_EQ_INT(r[3].status, 200);
    T_EQ_INT(r[3].body_len, 200000);
    for (int i = 0; i < 4; i++) {
        res_free(&r[i]);
    }
    free(u[0]);
    free(u[1]);
    free(raw_url);
    evconnlistener_free(rw.lev);
    run_for(50); /* let the raw server's connections finish */
    teardown();
}

/* ---- a server that answers the first request of each connection and closes the
 * connection at the second, without an answer (a keep-alive connection lost) ---- */

struct dropper {
    struct evconnlistener *lev;
    int port;
    int requests; /* requests received, answered or not */
    int conns;    /* connections accepted */
    struct dropper_conn *open[8];
};

struct dropper_conn {
    struct dropper *d;
    struct bufferevent *bev;
    int slot;
    int seen; /* requests on this connection */
};

static void
dropper_close(struct dropper_conn *dc)
{
    dc->d->open[dc->slot] = NULL;
    bufferevent_free(dc->bev);
    free(dc);
}

static void
dropper_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    dropper_close(arg);
}

static void
dropper_read_cb(struct bufferevent *bev, void *arg)
{
    struct dropper_conn *dc = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                                 "Content-Length: 2\r\n\r\nok";

    while (evbuffer_search(in, "\r\n\r\n", 4, NULL).pos >= 0) {
        struct evbuffer_ptr p = evbuffer_search(in, "\r\n\r\n", 4, NULL);

        evbuffer_drain(in, (size_t)p.pos + 4);
        dc->d->requests++;
        if (++dc->seen > 1) {
            dropper_close(dc); /* closed: no answer at all */
            return;
        }
        bufferevent_write(bev, answer, sizeof(answer) - 1);
    }
}

static void
dropper_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int len,
               void *arg)
{
    struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    struct dropper_conn *dc = xcalloc(1, sizeof(*dc));

    (void)lev;
    (void)sa;
    (void)len;
    dc->d = arg;
    dc->bev = bev;
    dc->slot = dc->d->conns++ % 8;
    dc->d->open[dc->slot] = dc;
    bufferevent_setcb(bev, dropper_read_cb, NULL, dropper_event_cb, dc);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* A request whose reused connection closes before any answer is not sent again by
 * libcurl on a fresh connection: the call fails, clearly, and the server saw it once;
 * whoever called decides to resend (the next call gets a fresh connection). Idempotent
 * or not, nothing is resent behind the caller's back, so its attempts are what it set. */
static void
test_no_silent_resend(void)
{
    struct res r[3];
    struct httpc_request rq;
    struct dropper d;
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    char *u;

    setup();
    memset(r, 0, sizeof(r));
    memset(&rq, 0, sizeof(rq));
    memset(&d, 0, sizeof(d));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d.lev =
        evconnlistener_new_bind(base, dropper_accept, &d, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                16, (struct sockaddr *)&sin, sizeof(sin));
    T_REQUIRE(d.lev != NULL);
    getsockname(evconnlistener_get_fd(d.lev), (struct sockaddr *)&sin, &sl);
    d.port = ntohs(sin.sin_port);
    u = xasprintf("http://127.0.0.1:%d/page", d.port);
    rq.method = "GET";
    rq.url = u;
    start(&rq, &r[0]);
    run_until(&ndone, 1, 5000);
    T_EQ_INT(r[0].status, 200);
    T_EQ_INT(d.conns, 1);
    /* The same connection again: the server closes it at this request. */
    start(&rq, &r[1]);
    run_until(&ndone, 2, 5000);
    T_REQUIRE(ndone == 2);
    T_EQ_INT(r[1].status, 0);
    T_CONTAINS(r[1].error, "closed before any answer");
    T_EQ_INT(d.requests, 2); /* not resent on a fresh connection */
    run_for(100);
    T_EQ_INT(d.requests, 2);
    /* The caller's own resend: a fresh connection, answered. */
    start(&rq, &r[2]);
    run_until(&ndone, 3, 5000);
    T_EQ_INT(r[2].status, 200);
    T_EQ_INT(d.requests, 3);
    T_EQ_INT(reentered, 0);
    for (int i = 0; i < 3; i++) {
        res_free(&r[i]);
    }
    free(u);
    evconnlistener_free(d.lev);
    run_for(50);
    for (int i = 0; i < 8; i++) {
        if (d.open[i] != NULL) {
            dropper_close(d.open[i]);
        }
    }
    teardown();
}

/* A port nobody listens on (bound, then closed). */
static int
dead_port(void)
{
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &sl) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return 1;
    }
    port = ntohs(sin.sin_port);
    close(fd);
    return port;
}

static void
test_refused(void)
{
    struct res r;
    char *u;
    struct httpc_request rq;

    setup();
    memset(&r, 0, sizeof(r));
    memset(&rq, 0, sizeof(rq));
    u = xasprintf("http://127.0.0.1:%d/x", dead_port());
    rq.method = "GET";
    rq.url = u;
    start(&rq, &r);
    run_until(&ndone, 1, 5000);
    T_REQUIRE(ndone == 1);
    T_EQ_INT(r.status, 0);
    T_EQ_INT(r.timed_out, 0);
    T_ASSERT(r.error != NULL);
    T_EQ_INT(reentered, 0);
    res_free(&r);
    free(u);
    teardown();
}

static void
test_rejected_at_start(void)
{
    static const char *bad_urls[] = {
        "http://192.0.2.1/x",
        "http://example.com/",
        "http://localhost.example.com/",
        "http://10.0.0.1:8080/",
        "http://[2001:db8::1]/",
        "ftp://127.0.0.1/x",
        "file:///etc/passwd",
        "not a url",
        "/relative/path",
        "https://:443/x",
    };
    static const char *ok_urls[] = {
        "http://127.0.0.1:1/", "http://127.1.2.3:1/", "http://localhost:1/",
        "http://LOCALHOST:1/", "http://[::1]:1/",
    };
    const char *crlf[] = { "X-A: 1\r\nX-Injected: 2", NULL };
    const char *nocolon[] = { "NoColon", NULL };
    struct httpc_request rq;
    struct res r[5];
    char *err = NULL;

    setup();
    memset(&rq, 0, sizeof(rq));
    memset(r, 0, sizeof(r));
    rq.method = "GET";
    for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
        rq.url = bad_urls[i];
        if (httpc_start(&rq, on_done, &r[0], &err) != NULL) {
            T_FAIL_("%s was accepted", bad_urls[i]);
        }
        if (err == NULL) {
            T_FAIL_("%s: no error message", bad_urls[i]);
        }
        free(err);
        err = NULL;
    }
    rq.url = "http://192.0.2.1/x";
    T_ASSERT(httpc_start(&rq, on_done, &r[0], &err) == NULL);
    T_CONTAINS(err, "https");
    free(err);
    err = NULL;
    rq.url = "http://127.0.0.1:1/";
    rq.method = "get";
    T_ASSERT(httpc_start(&rq, on_done, &r[0], &err) == NULL);
    rq.method = "GET\r\nX";
    T_ASSERT(httpc_start(&rq, on_done, &r[0], &err) == NULL);
    rq.method = "GET";
    rq.headers = crlf;
    T_ASSERT(httpc_start(&rq, on_done, &r[0], &err) == NULL);
    rq.headers = nocolon;
    T_ASSERT(httpc_start(&rq, on_done, &r[0], &err) == NULL);
    rq.headers = NULL;
    rq.body_len = 3;
    T_ASSERT(httpc_start(&rq, on_done, &r[0], &err) == NULL);
    rq.body_len = 0;
    free(err);
    err = NULL;
    T_EQ_INT(httpc_in_flight(), 0);

    /* Loopback http is accepted (and fails later, from the loop). */
    for (size_t i = 0; i < sizeof(ok_urls) / sizeof(ok_urls[0]); i++) {
        rq.url = ok_urls[i];
        rq.timeout = 2;
        start(&rq, &r[i]);
    }
    run_until(&ndone, 5, 5000);
    T_EQ_INT(ndone, 5);
    for (int i = 0; i < 5; i++) {
        T_EQ_INT(r[i].calls, 1);
        T_EQ_INT(r[i].status, 0);
        res_free(&r[i]);
    }
    T_EQ_INT(reentered, 0);
    teardown();

    /* Not initialized. */
    rq.url = "https://127.0.0.1/";
    T_ASSERT(httpc_start(&rq, on_done, &r[0], &err) == NULL);
    T_ASSERT(err != NULL);
    free(err);
    httpc_shutdown(); /* twice is harmless */
}

static void
test_many_concurrent(void)
{
    enum { N = 200 };
    struct res *r = xcalloc(N, sizeof(*r));
    char **u = xcalloc(N, sizeof(*u));
    struct httpc_request rq;
    int ok = 0;

    setup();
    memset(&rq, 0, sizeof(rq));
    rq.method = "GET";
    for (int i = 0; i < N; i++) {
        u[i] = xasprintf("http://127.0.0.1:%d/echo?i=%d", S.port, i);
        rq.url = u[i];
        start(&rq, &r[i]);
    }
    T_EQ_INT(httpc_in_flight(), N);
    run_until(&ndone, N, 20000);
    T_EQ_INT(ndone, N);
    for (int i = 0; i < N; i++) {
        if (r[i].calls == 1 && r[i].status == 200) {
            ok++;
        }
        res_free(&r[i]);
        free(u[i]);
    }
    T_EQ_INT(ok, N);
    T_EQ_INT(S.requests, N);
    /* Several connections at once, but capped per host. */
    T_ASSERT(S.max_conns >= 2);
    T_ASSERT(S.max_conns <= 16);
    T_EQ_INT(httpc_in_flight(), 0);
    T_EQ_INT(reentered, 0);
    free(r);
    free(u);
    teardown();
}

/* Waiting for a connection slot is not on the wire: with every slot to the host taken
 * by slow answers, a call queued behind them with a timeout shorter than that wait still
 * gets its full timeout once it has a connection. */
static void
test_queue_time_not_counted(void)
{
    enum { N = 17 }; /* one more than the connections per host */
    struct res r[N];
    char *slow = NULL, *quick = NULL;
    struct httpc_request rq;

    setup();
    memset(r, 0, sizeof(r));
    slow = xasprintf("http://127.0.0.1:%d/slow?ms=1200", S.port);
    quick = xasprintf("http://127.0.0.1:%d/echo", S.port);
    memset(&rq, 0, sizeof(rq));
    rq.method = "GET";
    rq.timeout = 10;
    rq.url = slow;
    for (int i = 0; i < N - 1; i++) {
        start(&rq, &r[i]);
    }
    rq.url = quick;
    rq.timeout = 0.6; /* shorter than the 1.2 s it waits for a slot */
    start(&rq, &r[N - 1]);
    run_until(&ndone, N, 10000);
    T_EQ_INT(ndone, N);
    for (int i = 0; i < N - 1; i++) {
        T_EQ_INT(r[i].status, 200);
    }
    T_EQ_INT(r[N - 1].status, 200);
    T_EQ_INT(r[N - 1].timed_out, 0);
    /* counted from its connection, not from its queueing (which alone took 1.2 s) */
    T_ASSERT(r[N - 1].elapsed_ms < 1200);
    T_ASSERT(S.max_conns <= 16);
    for (int i = 0; i < N; i++) {
        res_free(&r[i]);
    }
    free(slow);
    free(quick);
    teardown();
}

/* Each callback starts the next call, from inside the callback. */
static int chain_left;
static char *chain_url;

static void
on_chain(void *arg, const struct httpc_response *resp)
{
    struct httpc_request rq;
    char *err = NULL;

    if (in_start) {
        reentered = 1;
    }
    (void)arg;
    ndone++;
    if (resp->status != 200) {
        T_FAIL_("chain status %d", resp->status);
    }
    if (http_server_conns(S.http) > S.max_conns) {
        S.max_conns = http_server_conns(S.http);
    }
    if (--chain_left > 0) {
        memset(&rq, 0, sizeof(rq));
        rq.method = "GET";
        rq.url = chain_url;
        in_start = 1;
        if (httpc_start(&rq, on_chain, NULL, &err) == NULL) {
            T_FAIL_("chained start: %s", err);
            free(err);
        }
        in_start = 0;
    }
}

static void
test_connection_reuse(void)
{
    struct httpc_request rq;
    char *err = NULL;

    setup();
    chain_url = url("/echo");
    chain_left = 10;
    memset(&rq, 0, sizeof(rq));
    rq.method = "GET";
    rq.url = chain_url;
    in_start = 1;
    T_REQUIRE(httpc_start(&rq, on_chain, NULL, &err) != NULL);
    in_start = 0;
    run_until(&ndone, 10, 5000);
    T_EQ_INT(ndone, 10);
    T_EQ_INT(S.requests, 10);
    /* Ten requests, one connection, still open for the next call. */
    T_EQ_INT(S.max_conns, 1);
    T_EQ_INT(http_server_conns(S.http), 1);
    T_EQ_INT(reentered, 0);
    free(chain_url);
    teardown();
}

static void
test_cancel(void)
{
    struct res r[3];
    struct httpc_call *c0, *c1, *c2;
    char *hang, *echo;
    struct httpc_request rq;

    setup();
    hang = url("/hang");
    echo = url("/echo");
    memset(r, 0, sizeof(r));
    memset(&rq, 0, sizeof(rq));
    rq.method = "GET";
    rq.url = hang;
    rq.timeout = 10;
    c0 = start(&rq, &r[0]);
    rq.url = echo;
    c1 = start(&rq, &r[1]);
    /* Cancelled before the loop ever ran it. */
    httpc_cancel(c1);
    T_EQ_INT(httpc_in_flight(), 1);
    run_until(&S.hung, 1, 5000);
    T_EQ_INT(S.hung, 1);
    /* Cancelled while the server holds the request. */
    httpc_cancel(c0);
    httpc_cancel(NULL);
    T_EQ_INT(httpc_in_flight(), 0);
    run_for(150);
    T_EQ_INT(r[0].calls, 0);
    T_EQ_INT(r[1].calls, 0);
    /* The client still works afterwards. */
    c2 = start(&rq, &r[2]);
    T_ASSERT(c2 != NULL);
    run_until(&ndone, 1, 5000);
    T_EQ_INT(r[2].status, 200);
    T_EQ_INT(ndone, 1);
    res_free(&r[2]);
    free(hang);
    free(echo);
    teardown();
}

/* Shutdown with calls in flight: no callbacks, nothing leaks. And from a callback. */
static void
on_shutdown(void *arg, const struct httpc_response *resp)
{
    (void)resp;
    (*(int *)arg)++;
    ndone++;
    httpc_shutdown();
}

static void
test_shutdown(void)
{
    struct res r[4];
    char *hang, *echo;
    struct httpc_request rq;
    char *err = NULL;
    int shut = 0;

    setup();
    hang = url("/hang");
    echo = url("/echo");
    memset(r, 0, sizeof(r));
    memset(&rq, 0, sizeof(rq));
    rq.method = "GET";
    rq.url = hang;
    start(&rq, &r[0]);
    start(&rq, &r[1]);
    rq.url = echo;
    start(&rq, &r[2]);
    /* A call the server holds does not hold the others back. */
    run_until(&S.hung, 2, 5000);
    run_until(&ndone, 1, 5000);
    T_EQ_INT(S.hung, 2);
    T_EQ_INT(r[2].status, 200);
    httpc_shutdown();
    T_EQ_INT(httpc_in_flight(), 0);
    run_for(50);
    T_EQ_INT(r[0].calls + r[1].calls, 0);
    res_free(&r[2]);

    /* Again, shut down from inside the first completion callback. */
    T_REQUIRE(httpc_init(base, &err) == 0);
    ndone = 0;
    T_REQUIRE(httpc_start(&rq, on_shutdown, &shut, &err) != NULL);
    rq.url = hang;
    start(&rq, &r[3]);
    run_until(&ndone, 1, 5000);
    run_for(50);
    T_EQ_INT(shut, 1);
    T_EQ_INT(r[3].calls, 0);
    T_EQ_INT(httpc_in_flight(), 0);
    free(hang);
    free(echo);
    teardown();
}

/* The proxy comes from the request only: the *_proxy environment is ignored. */
static void
test_proxy(void)
{
    struct res r[2];
    char *target, *proxy;
    struct httpc_request rq;

    setup();
    memset(r, 0, sizeof(r));
    memset(&rq, 0, sizeof(rq));
    target = xasprintf("http://127.0.0.1:%d/x", dead_port());
    proxy = xasprintf("http://127.0.0.1:%d", S.port);
    setenv("http_proxy", proxy, 1);
    setenv("HTTPS_PROXY", proxy, 1);
    setenv("ALL_PROXY", proxy, 1);
    rq.method = "GET";
    rq.url = target;
    start(&rq, &r[0]);
    run_until(&ndone, 1, 5000);
    /* Went straight to the dead port, not through the "proxy". */
    T_EQ_INT(r[0].status, 0);
    T_EQ_INT(S.requests, 0);
    /* With rq->proxy set, the request goes to the proxy in absolute form, which our
     * server refuses with 400: proof that it got there. */
    rq.proxy = proxy;
    start(&rq, &r[1]);
    run_until(&ndone, 2, 5000);
    T_EQ_INT(r[1].status, 400);
    unsetenv("http_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("ALL_PROXY");
    res_free(&r[0]);
    res_free(&r[1]);
    free(target);
    free(proxy);
    teardown();
}

/* A TLS server on 127.0.0.1 with an RSA certificate, limited to the protocol versions
 * [minv, maxv] and the TLS 1.2 cipher list ciphers. */
struct tls_srv {
    SSL_CTX *ctx;
    struct http_server *http;
    char *ca;
    int port;
};

static void
tls_srv_open(struct tls_srv *t, int minv, int maxv, const char *ciphers)
{
    struct http_config cfg;
    EVP_PKEY *key = NULL;
    X509 *x = make_cert_kind(&key, 1);
    char *err = NULL;

    memset(t, 0, sizeof(*t));
    t->ctx = SSL_CTX_new(TLS_server_method());
    T_REQUIRE(x != NULL && t->ctx != NULL);
    T_REQUIRE(SSL_CTX_use_certificate(t->ctx, x) == 1 && SSL_CTX_use_PrivateKey(t->ctx, key) == 1);
    SSL_CTX_set_min_proto_version(t->ctx, minv);
    SSL_CTX_set_max_proto_version(t->ctx, maxv);
    T_REQUIRE(SSL_CTX_set_cipher_list(t->ctx, ciphers) == 1);
    t->ca = write_pem(x);
    T_REQUIRE(t->ca != NULL);
    X509_free(x);
    EVP_PKEY_free(key);
    memset(&cfg, 0, sizeof(cfg));
    cfg.ssl_ctx = t->ctx;
    t->http = http_server_new(base, &cfg, handler, &S);
    if (http_server_listen(t->http, "127.0.0.1:0", &err) == -1) {
        T_FAIL_("listen: %s", err);
        free(err);
    }
    t->port = http_server_port(t->http);
}

static void
tls_srv_close(struct tls_srv *t)
{
    http_server_free(t->http);
    SSL_CTX_free(t->ctx);
    unlink(t->ca);
    free(t->ca);
}

/* Outbound TLS is 1.2 or later with forward-secret AEAD ciphers: a server that offers
 * only AES128-SHA (RSA key exchange, CBC) or only TLS 1.0/1.1 is refused with a message
 * that says so; a TLS 1.2 server with ECDHE-RSA-AES128-GCM-SHA256 still works. */
static void
test_tls_policy(void)
{
    struct tls_srv t[3];
    struct res r[3];
    char *u[3];
    struct httpc_request rq;

    setup();
    memset(r, 0, sizeof(r));
    tls_srv_open(&t[0], TLS1_2_VERSION, TLS1_2_VERSION, "AES128-SHA");
    tls_srv_open(&t[1], TLS1_VERSION, TLS1_1_VERSION, "DEFAULT:@SECLEVEL=0");
    tls_srv_open(&t[2], TLS1_2_VERSION, TLS1_2_VERSION, "ECDHE-RSA-AES128-GCM-SHA256");
    for (int i = 0; i < 3; i++) {
        u[i] = xasprintf("https://127.0.0.1:%d/echo", t[i].port);
        memset(&rq, 0, sizeof(rq));
        rq.method = "GET";
        rq.url = u[i];
        rq.ca_file = t[i].ca;
        start(&rq, &r[i]);
    }
    run_until(&ndone, 3, 10000);
    T_REQUIRE(ndone == 3);
    for (int i = 0; i < 2; i++) {
        T_EQ_INT(r[i].status, 0);
        T_REQUIRE(r[i].error != NULL);
        T_CONTAINS(r[i].error, "TLS handshake with 127.0.0.1 failed");
        T_CONTAINS(r[i].error, "TLS 1.2 or later");
    }
    T_EQ_INT(r[2].status, 200);
    T_ASSERT(r[2].error == NULL);
    T_CONTAINS(r[2].body, "method=GET");
    for (int i = 0; i < 3; i++) {
        res_free(&r[i]);
        free(u[i]);
        tls_srv_close(&t[i]);
    }
    teardown();
}

/* Answers are asked for in gzip or deflate, and libcurl decodes them; an answer in a
 * coding we did not ask for (br, or an unknown one) is refused, never handed over as
 * coded bytes. */
static void
test_content_encoding(void)
{
    static const char *const paths[] = { "/coded?enc=gzip", "/coded?enc=br", "/coded?enc=x-custom",
                                         "/coded" };
    struct res r[4];
    char *u[4];
    struct httpc_request rq;

    setup();
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 4; i++) {
        u[i] = url(paths[i]);
        memset(&rq, 0, sizeof(rq));
        rq.method = "GET";
        rq.url = u[i];
        start(&rq, &r[i]);
    }
    run_until(&ndone, 4, 10000);
    T_REQUIRE(ndone == 4);
    T_EQ_INT(r[0].status, 200);
    T_EQ_STR(r[0].body, "{\"coded\":true}");
    for (int i = 1; i < 3; i++) {
        T_EQ_INT(r[i].status, 0);
        T_REQUIRE(r[i].error != NULL);
        T_CONTAINS(r[i].error, "Content-Encoding");
        T_CONTAINS(r[i].error, "was not asked for");
    }
    /* Unlabelled, the bytes are the body: the caller's content checks see them. */
    T_EQ_INT(r[3].status, 200);
    T_EQ_INT(r[3].body_len, 34);
    for (int i = 0; i < 4; i++) {
        res_free(&r[i]);
        free(u[i]);
    }
    teardown();
}

/* Debug logs name the method, host and status, never the body or the Authorization
 * header. */
static void
test_no_secrets_logged(void)
{
    char path[] = "/tmp/kg-httpc-log-XXXXXX";
    int fd = mkstemp(path), saved = dup(2);
    const char *hdrs[] = { "Authorization: Bearer SECRET-TOKEN-1", NULL };
    struct httpc_request rq;
    struct res r;
    char *u, *logs;
    size_t len;

    T_REQUIRE(fd >= 0 && saved >= 0);
    setup();
    log_set_level(KG_LOG_DEBUG);
    memset(&r, 0, sizeof(r));
    memset(&rq, 0, sizeof(rq));
    u = url("/echo?q=PATH-SECRET");
    rq.method = "POST";
    rq.url = u;
    rq.headers = hdrs;
    rq.body = "BODY-SECRET";
    rq.body_len = 11;
    fflush(stderr);
    dup2(fd, 2);
    start(&rq, &r);
    run_until(&ndone, 1, 5000);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    T_EQ_INT(r.status, 200);
    logs = util_read_file(path, 1 << 20, &len, NULL);
    unlink(path);
    T_REQUIRE(logs != NULL);
    T_CONTAINS(logs, "httpc.done");
    T_CONTAINS(logs, "method=POST");
    T_CONTAINS(logs, "host=127.0.0.1");
    T_CONTAINS(logs, "status=200");
    /* The server logs the target; our own lines must not carry any secret. */
    for (char *line = strtok(logs, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (strstr(line, "event=httpc") != NULL && strstr(line, "SECRET") != NULL) {
            T_FAIL_("secret in log line: %s", line);
        }
    }
    free(logs);
    res_free(&r);
    free(u);
    teardown();
}

TEST_LIST = {
    { "get_post_echo", test_get_post_echo },
    { "status_codes", test_status_codes },
    { "tls", test_tls },
    { "tls_policy", test_tls_policy },
    { "content_encoding", test_content_encoding },
    { "timeout", test_timeout },
    { "max_response", test_max_response },
    { "refused", test_refused },
    { "no_silent_resend", test_no_silent_resend },
    { "rejected_at_start", test_rejected_at_start },
    { "many_concurrent", test_many_concurrent },
    { "queue_time_not_counted", test_queue_time_not_counted },
    { "connection_reuse", test_connection_reuse },
    { "cancel", test_cancel },
    { "shutdown", test_shutdown },
    { "proxy", test_proxy },
    { "no_secrets_logged", test_no_secrets_logged },
    { NULL, NULL },
};
