/* test_http.c: the HTTP server over real sockets on 127.0.0.1 (plain and TLS), with the
 * server's event loop driven from the test between client socket calls; and the request
 * head parser on its own. */
#include "engine/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "engine/log.h"
#include "tests/unit/test.h"

/* ---- the parser ---- */

static void
test_parse_valid(void)
{
    struct http_head h;
    char *err = NULL;
    const char *s = "POST /a/b?x=1 HTTP/1.1\r\nHost: example\r\nContent-Length: 5\r\n"
                    "X-Empty:\r\nX-Pad: \t v  v \t\r\n\r\nhello";
    const char *s10 = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
    const char *sch = "PUT /c HTTP/1.1\r\nhost: h\r\nTransfer-Encoding: Chunked\r\n"
                      "Connection: foo, close\r\n\r\n";
    const char *sdup =
        "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n";

    T_EQ_INT(http_parse_head(s, strlen(s), 16384, &h, &err), (int)strlen(s) - 5);
    T_EQ_STR(h.method, "POST");
    T_EQ_STR(h.target, "/a/b?x=1");
    T_EQ_INT(h.minor, 1);
    T_REQUIRE(h.nheaders == 4);
    T_EQ_STR(h.names[0], "Host");
    T_EQ_STR(h.values[0], "example");
    T_EQ_STR(h.names[2], "X-Empty");
    T_EQ_STR(h.values[2], "");
    T_EQ_STR(h.values[3], "v  v");
    T_EQ_INT(h.content_length, 5);
    T_EQ_INT(h.chunked, 0);
    T_EQ_INT(h.keep_alive, 1);
    http_head_free(&h);

    T_EQ_INT(http_parse_head(s10, strlen(s10), 16384, &h, &err), (int)strlen(s10));
    T_EQ_INT(h.minor, 0);
    T_EQ_INT(h.keep_alive, 1);
    T_EQ_INT(h.content_length, -1);
    http_head_free(&h);

    T_EQ_INT(http_parse_head(sch, strlen(sch), 16384, &h, &err), (int)strlen(sch));
    T_EQ_INT(h.chunked, 1);
    T_EQ_INT(h.keep_alive, 0);
    http_head_free(&h);

    T_EQ_INT(http_parse_head(sdup, strlen(sdup), 16384, &h, &err), (int)strlen(sdup));
    T_EQ_INT(h.content_length, 3);
    http_head_free(&h);
    T_ASSERT(err == NULL);
}

static void
test_parse_incomplete(void)
{
    const char *s = "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n";
    size_t n = strlen(s);

    for (size_t i = 0; i < n; i++) {
        struct http_head h;
        char *err = NULL;
        int r = http_parse_head(s, i, 16384, &h, &err);

        if (r != 0) {
            T_FAIL_("prefix of %zu bytes gave %d (%s)", i, r, err ? err : "");
        }
        T_ASSERT(h.target == NULL && h.nheaders == 0);
        http_head_free(&h);
        free(err);
    }
}

struct bad_case {
    const char *what;
    const char *s;
    size_t len; /* 0: strlen */
};

#define NUL_CASE "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n"

static void
test_parse_malformed(void)
{
    static const struct bad_case cases[] = {
        { "method ctl", "G\001T / HTTP/1.1\r\nHost: h\r\n\r\n", 0 },
        { "leading space", " GET / HTTP/1.1\r\nHost: h\r\n\r\n", 0 },
        { "double space", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 0 },
        { "absolute form", "GET http://x/ HTTP/1.1\r\nHost: h\r\n\r\n", 0 },
        { "asterisk", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", 0 },
        { "http/2", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 0 },
        { "lowercase version", "GET / http/1.1\r\nHost: h\r\n\r\n", 0 },
        { "junk after version", "GET / HTTP/1.1 x\r\nHost: h\r\n\r\n", 0 },
        { "space in target", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 0 },
        { "DEL in target", "GET /\177 HTTP/1.1\r\nHost: h\r\n\r\n", 0 },
        { "8bit in target", "GET /\303\251 HTTP/1.1\r\nHost: h\r\n\r\n", 0 },
        { "long method", "ABCDEFGHIJKLMNOPQ / HTTP/1.1\r\nHost: h\r\n\r\n", 0 },
        { "bare CR in line", "GET / HTTP/1.1\r\r\nHost: h\r\n\r\n", 0 },
        { "empty request line", "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 0 },
        { "space in name", "GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n", 0 },
        { "space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 0 },
        { "empty name", "GET / HTTP/1.1\r\nHost: h\r\n: x\r\n\r\n", 0 },
        { "no colon", "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 0 },
        { "obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n  more\r\n\r\n", 0 },
        { "bare CR in value", "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", 0 },
        { "NUL in value", NUL_CASE, sizeof(NUL_CASE) - 1 },
        { "CL conflict",
          "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 0 },
        { "CL list", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\n", 0 },
        { "CL not a number", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n", 0 },
        { "CL negative", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 0 },
        { "CL plus", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 0 },
        { "CL empty", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", 0 },
        { "CL huge", "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n",
          0 },
        { "CL and TE",
          "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
          0 },
        { "TE gzip", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 0 },
        { "TE list", "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 0 },
        { "TE twice",
          "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
          "Transfer-Encoding: chunked\r\n\r\n",
          0 },
        { "TE in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 0 },
        { "no Host", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 0 },
        { "two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 0 },
        { "bad line in incomplete head", "GET / HTTP/9.9\r\nHost: h\r\n", 0 },
        { "bad field in incomplete head", "GET / HTTP/1.1\r\nHost h\r\n", 0 },
        /* Every line ends with CRLF; a bare LF is refused wherever it is. */
        { "bare LF everywhere", "GET / HTTP/1.0\nConnection: Keep-Alive\n\n", 0 },
        { "bare LF after request line", "GET / HTTP/1.1\nHost: h\r\n\r\n", 0 },
        { "bare LF after a field", "GET / HTTP/1.1\r\nHost: h\nX-A: b\r\n\r\n", 0 },
        { "bare LF as the empty line", "GET / HTTP/1.1\r\nHost: h\r\n\n", 0 },
        { "bare LF in incomplete head", "GET / HTTP/1.1\r\nHost: h\n", 0 },
        { "bare LF alone", "\n", 0 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct http_head h;
        char *err = NULL;
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].s);
        int r = http_parse_head(cases[i].s, len, 16384, &h, &err);

        if (r != -1 || err == NULL) {
            T_FAIL_("%s: got %d", cases[i].what, r);
        }
        T_ASSERT(h.target == NULL && h.names == NULL);
        http_head_free(&h);
        free(err);
    }
}

static void
test_parse_limits(void)
{
    struct http_head h;
    char *err = NULL;
    struct buf b;
    int r;

    /* Larger than max: complete or not, refused. */
    buf_init(&b, 0);
    T_REQUIRE(buf_puts(&b, "GET / HTTP/1.1\r\nHost: h\r\nX-Big: ") == 0);
    for (int i = 0; i < 200; i++) {
        T_REQUIRE(buf_puts(&b, "0123456789") == 0);
    }
    T_EQ_INT(http_parse_head(b.data, b.len, 1024, &h, &err), -1);
    T_ASSERT(err != NULL);
    free(err);
    err = NULL;
    T_REQUIRE(buf_puts(&b, "\r\n\r\n") == 0);
    T_EQ_INT(http_parse_head(b.data, b.len, 1024, &h, &err), -1);
    free(err);
    err = NULL;
    T_EQ_INT(http_parse_head(b.data, b.len, 16384, &h, &err), (int)b.len);
    http_head_free(&h);
    buf_free(&b);

    /* Too many fields. */
    buf_init(&b, 0);
    T_REQUIRE(buf_puts(&b, "GET / HTTP/1.1\r\nHost: h\r\n") == 0);
    for (int i = 0; i < 120; i++) {
        T_REQUIRE(buf_printf(&b, "X-%d: v\r\n", i) == 0);
    }
    T_REQUIRE(buf_puts(&b, "\r\n") == 0);
    r = http_parse_head(b.data, b.len, 16384, &h, &err);
    T_EQ_INT(r, -1);
    T_CONTAINS(err, "too many");
    free(err);
    http_head_free(&h);
    buf_free(&b);
}

/* ---- a server on a loop driven by the test ---- */

struct tsrv {
    struct event_base *base;
    struct http_server *srv;
    int port;
    int handled;
    struct http_request *held;
    char *big;
};

#define BIG_REPLY (8u << 20)

static void
later_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    http_reply(arg, 200, "text/plain", "later", 5);
}

static void
handler(struct http_request *req, void *arg)
{
    struct tsrv *t = arg;
    const char *path = http_request_path(req);

    t->handled++;
    if (strcmp(path, "/hello") == 0) {
        http_reply_header(req, "X-Test", "yes");
        http_reply_header(req, "X-Evil", "a\r\nSet-Cookie: x=1");
        http_reply(req, 200, "text/plain", "hello", 5);
    } else if (strcmp(path, "/echo") == 0) {
        size_t len;
        const char *body = http_request_body(req, &len);

        http_reply_header(req, "X-Method", http_request_method(req));
        http_reply(req, 200, "application/octet-stream", body, len);
    } else if (strcmp(path, "/info") == 0 || strncmp(path, "/p/", 3) == 0) {
        const char *q = http_request_query(req);
        const char *a = http_request_param(req, "a");
        const char *b = http_request_param(req, "b");
        const char *h = http_request_header(req, "x-thing");
        char *s =
            xasprintf("path=[%s] query=[%s] a=[%s] b=[%s] h=[%s] peer=[%s]", path, q ? q : "-",
                      a ? a : "-", b ? b : "-", h ? h : "-", http_request_peer(req));

        http_reply(req, 200, "text/plain", s, strlen(s));
        free(s);
    } else if (strcmp(path, "/later") == 0) {
        struct timeval tv = { 0, 100000 };

        event_base_once(t->base, -1, EV_TIMEOUT, later_cb, req, &tv);
    } else if (strcmp(path, "/never") == 0) {
        t->held = req;
    } else if (strcmp(path, "/big") == 0) {
        if (t->big == NULL) {
            t->big = xcalloc(1, BIG_REPLY);
        }
        http_reply(req, 200, NULL, t->big, BIG_REPLY);
    } else if (strcmp(path, "/empty") == 0) {
        http_reply(req, 204, "text/plain", "ignored", 7);
    } else {
        http_reply_error(req, 404, "not_found", "no such path");
    }
}

static int
tsrv_start(struct tsrv *t, const struct http_config *cfg)
{
    char *err = NULL;

    memset(t, 0, sizeof(*t));
    signal(SIGPIPE, SIG_IGN); /* as the daemon does: libevent writes with writev */
    /* Quiet by default; TEST_HTTP_DEBUG=1 shows the server's log lines. */
    log_set_level(getenv("TEST_HTTP_DEBUG") != NULL ? KG_LOG_DEBUG : KG_LOG_ERR);
    t->base = event_base_new();
    if (t->base == NULL) {
        return -1;
    }
    t->srv = http_server_new(t->base, cfg, handler, t);
    if (http_server_listen(t->srv, "127.0.0.1:0", &err) == -1) {
        fprintf(stderr, "listen: %s\n", err);
        free(err);
        return -1;
    }
    t->port = http_server_port(t->srv);
    return t->port > 0 ? 0 : -1;
}

static void
tsrv_stop(struct tsrv *t)
{
    http_server_free(t->srv);
    event_base_free(t->base);
    free(t->big);
    log_set_level(KG_LOG_INFO);
}

static void
loop_once(struct tsrv *t)
{
    event_base_loop(t->base, EVLOOP_NONBLOCK);
    usleep(300);
}

static void
pump(struct tsrv *t, int ms)
{
    int64_t end = util_mono_us() + (int64_t)ms * 1000;

    do {
        loop_once(t);
    } while (util_mono_us() < end);
}

/* Run the loop until the server has n open connections; -1 after ms. */
static int
pump_until_conns(struct tsrv *t, int n, int ms)
{
    int64_t end = util_mono_us() + (int64_t)ms * 1000;

    while (http_server_conns(t->srv) != n) {
        if (util_mono_us() > end) {
            return -1;
        }
        loop_once(t);
    }
    return 0;
}

/* Connect to 127.0.0.1:port from the loopback address from (NULL: the kernel's choice,
 * 127.0.0.1); every 127.0.0.0/8 address is local on Linux, so a test can play several
 * clients. */
static int
cli_connect_from(int port, int rcvbuf, const char *from)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin;

    if (fd == -1) {
        return -1;
    }
    if (from != NULL) {
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        if (inet_pton(AF_INET, from, &sin.sin_addr) != 1 ||
            bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
            close(fd);
            return -1;
        }
    }
    if (rcvbuf > 0) {
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* On loopback the kernel completes the handshake from the backlog at once. */
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
        close(fd);
        return -1;
    }
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static int
cli_connect(int port, int rcvbuf)
{
    return cli_connect_from(port, rcvbuf, NULL);
}

static int
cli_send(struct tsrv *t, int fd, const char *data, size_t len)
{
    int64_t end = util_mono_us() + 2000000;

    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

        if (n > 0) {
            data += n;
            len -= (size_t)n;
            continue;
        }
        if (n == -1 && errno != EAGAIN && errno != EWOULDBLOCK) {
            return -1;
        }
        if (util_mono_us() > end) {
            return -1;
        }
        loop_once(t);
    }
    event_base_loop(t->base, EVLOOP_NONBLOCK);
    return 0;
}

static int
cli_sends(struct tsrv *t, int fd, const char *s)
{
    return cli_send(t, fd, s, strlen(s));
}

/* Complete responses (head + Content-Length bytes) at the start of s[0..len). */
static int
count_responses(const char *s, size_t len)
{
    size_t pos = 0;
    int n = 0;

    if (s == NULL) {
        return 0;
    }
    for (;;) {
        const char *hend = memmem(s + pos, len - pos, "\r\n\r\n", 4);
        const char *cl;
        size_t hl, body = 0;

        if (hend == NULL) {
            return n;
        }
        hl = (size_t)(hend - (s + pos)) + 4;
        cl = memmem(s + pos, hl, "\r\nContent-Length: ", 18);
        if (cl != NULL) {
            body = strtoul(cl + 18, NULL, 10);
        }
        if (pos + hl + body > len) {
            return n;
        }
        pos += hl + body;
        n++;
    }
}

/* Read until nresp complete responses are in out (nresp > 0), EOF, or ms elapsed.
 * Returns 1 on EOF or reset, 0 otherwise. */
static int
cli_recv(struct tsrv *t, int fd, struct buf *out, int nresp, int ms)
{
    int64_t end = util_mono_us() + (int64_t)ms * 1000;

    for (;;) {
        char tmp[16384];
        ssize_t n;

        event_base_loop(t->base, EVLOOP_NONBLOCK);
        n = recv(fd, tmp, sizeof(tmp), 0);
        if (n > 0) {
            if (buf_append(out, tmp, (size_t)n) == -1) {
                abort();
            }
            if (nresp > 0 && count_responses(out->data, out->len) >= nresp) {
                return 0;
            }
            continue;
        }
        if (n == 0 || (n == -1 && errno == ECONNRESET)) {
            return 1;
        }
        if (util_mono_us() > end) {
            return 0;
        }
        usleep(300);
    }
}

/* Status code of the response starting at s, or -1. */
static int
status_of(const char *s)
{
    if (s == NULL || strncmp(s, "HTTP/1.1 ", 9) != 0) {
        return -1;
    }
    return atoi(s + 9);
}

/* Body of the first response in s (after its head), or "". */
static const char *
body_of(const char *s)
{
    const char *p = s != NULL ? strstr(s, "\r\n\r\n") : NULL;

    return p != NULL ? p + 4 : "";
}

static void
test_get_and_post(void)
{
    struct tsrv t;
    struct buf out;
    int fd;
    static const char post[] =
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\na\0b body!";

    T_REQUIRE(tsrv_start(&t, NULL) == 0);
    buf_init(&out, 0);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    T_EQ_INT(cli_recv(&t, fd, &out, 1, 1000), 0);
    T_EQ_INT(status_of(out.data), 200);
    T_CONTAINS(out.data, "HTTP/1.1 200 OK\r\n");
    T_CONTAINS(out.data, "\r\nContent-Type: text/plain\r\n");
    T_CONTAINS(out.data, "\r\nContent-Length: 5\r\n");
    T_CONTAINS(out.data, "\r\nX-Test: yes\r\n");
    T_CONTAINS(out.data, "\r\nDate: ");
    T_ASSERT(strstr(out.data, "Set-Cookie") == NULL);
    T_ASSERT(strstr(out.data, "Connection: close") == NULL);
    T_EQ_STR(body_of(out.data), "hello");
    buf_reset(&out);

    T_EQ_INT(cli_send(&t, fd, post, sizeof(post) - 1), 0);
    T_EQ_INT(cli_recv(&t, fd, &out, 1, 1000), 0);
    T_EQ_INT(status_of(out.data), 200);
    T_CONTAINS(out.data, "\r\nX-Method: POST\r\n");
    T_CONTAINS(out.data, "\r\nContent-Length: 9\r\n");
    T_ASSERT(out.len >= 9 && memcmp(out.data + out.len - 9, "a\0b body!", 9) == 0);
    buf_reset(&out);

    T_EQ_INT(cli_sends(&t, fd, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    T_EQ_INT(cli_recv(&t, fd, &out, 1, 1000), 0);
    T_EQ_INT(status_of(out.data), 404);
    T_CONTAINS(out.data, "Content-Type: application/json\r\n");
    T_EQ_STR(body_of(out.data), "{\"error\":\"not_found\",\"message\":\"no such path\"}");
    buf_reset(&out);

    T_EQ_INT(cli_sends(&t, fd, "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    cli_recv(&t, fd, &out, 0, 150);
    T_CONTAINS(out.data, "\r\nContent-Length: 5\r\n");
    T_ASSERT(out.len > 4 && strcmp(out.data + out.len - 4, "\r\n\r\n") == 0);
    buf_reset(&out);

    T_EQ_INT(cli_sends(&t, fd, "GET /empty HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    cli_recv(&t, fd, &out, 0, 150);
    T_EQ_INT(status_of(out.data), 204);
    T_ASSERT(strstr(out.data, "Content-Length") == NULL);
    T_ASSERT(strstr(out.data, "ignored") == NULL);
    T_EQ_INT(t.handled, 5);
    close(fd);
    T_EQ_INT(pump_until_conns(&t, 0, 1000), 0);
    buf_free(&out);
    tsrv_stop(&t);
}

static void
test_request_accessors(void)
{
    struct tsrv t;
    struct buf out;
    int fd;

    T_REQUIRE(tsrv_start(&t, NULL) == 0);
    buf_init(&out, 0);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd,
                       "GET /p/a%20b%2Fc+d?a=1+2%21&b&c=%zz&a=second HTTP/1.1\r\n"
                       "Host: x\r\nX-THING:  some value \r\n\r\n"),
             0);
    T_EQ_INT(cli_recv(&t, fd, &out, 1, 1000), 0);
    T_EQ_INT(status_of(out.data), 200);
    T_EQ_STR(body_of(out.data), "path=[/p/a b/c+d] query=[a=1+2%21&b&c=%zz&a=second] a=[1 2!] "
                                "b=[] h=[some value] peer=[127.0.0.1]");
    buf_reset(&out);
    T_EQ_INT(cli_sends(&t, fd, "GET /info HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    T_EQ_INT(cli_recv(&t, fd, &out, 1, 1000), 0);
    T_EQ_STR(body_of(out.data), "path=[/info] query=[-] a=[-] b=[-] h=[-] peer=[127.0.0.1]");
    close(fd);

    /* Malformed escapes and %00 in the path: 400 and close. */
    const char *bad[] = { "/a%zz", "/a%4", "/a%", "/a%00b" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *req = xasprintf("GET %s HTTP/1.1\r\nHost: x\r\n\r\n", bad[i]);

        buf_reset(&out);
        fd = cli_connect(t.port, 0);
        T_REQUIRE(fd >= 0);
        T_EQ_INT(cli_sends(&t, fd, req), 0);
        T_EQ_INT(cli_recv(&t, fd, &out, -1, 1000), 1);
        T_EQ_INT(status_of(out.data), 400);
        T_CONTAINS(out.data, "Connection: close\r\n");
        T_CONTAINS(out.data, "\"error\":\"bad_request\"");
        close(fd);
        free(req);
    }
    T_EQ_INT(t.handled, 2);
    T_EQ_INT(pump_until_conns(&t, 0, 1000), 0);
    buf_free(&out);
    tsrv_stop(&t);
}

static void
test_keep_alive(void)
{
    struct tsrv t;
    struct buf out;
    int fd;

    T_REQUIRE(tsrv_start(&t, NULL) == 0);
    buf_init(&out, 0);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    /* Empty lines before a request are ignored (RFC 9112 2.2). */
    T_EQ_INT(cli_sends(&t, fd, "\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    T_EQ_INT(cli_recv(&t, fd, &out, 1, 1000), 0);
    T_EQ_INT(status_of(out.data), 200);
    T_EQ_INT(http_server_conns(t.srv), 1);
    buf_reset(&out);
    T_EQ_INT(cli_sends(&t, fd, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 0);
    T_EQ_INT(cli_recv(&t, fd, &out, -1, 1000), 1);
    T_EQ_INT(count_responses(out.data, out.len), 1);
    T_CONTAINS(out.data, "\r\nConnection: close\r\n");
    T_EQ_STR(body_of(out.data), "hello");
    close(fd);

    /* HTTP/1.0: closes unless asked to keep alive. */
    buf_reset(&out);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd, "GET /hello HTTP/1.0\r\n\r\n"), 0);
    T_EQ_INT(cli_recv(&t, fd, &out, -1, 1000), 1);
    T_EQ_INT(status_of(out.data), 200);
    T_CONTAINS(out.data, "\r\nConnection: close\r\n");
    close(fd);

    buf_reset(&out);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), 0);
    T_EQ_INT(cli_recv(&t, fd, &out, 1, 1000), 0);
    T_CONTAINS(out.data, "\r\nConnection: keep-alive\r\n");
    buf_reset(&out);
    T_EQ_INT(cli_sends(&t, fd, "GET /hello HTTP/1.0\r\n\r\n"), 0);
    T_EQ_INT(cli_recv(&t, fd, &out, -1, 1000), 1);
    T_EQ_INT(status_of(out.data), 200);
    close(fd);
    T_EQ_INT(pump_until_conns(&t, 0, 1000), 0);
    T_EQ_INT(t.handled, 5);
    buf_free(&out);
    tsrv_stop(&t);
}

static void
test_pipelined(void)
{
    struct tsrv t;
    struct buf out;
    const char *a, *b, *c;
    int fd;

    T_REQUIRE(tsrv_start(&t, NULL) == 0);
    buf_init(&out, 0);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd,
                       "GET /later HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                       "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nthird"),
             0);
    pump(&t, 30);
    /* The first request is with the handler: the others wait, unparsed. */
    T_EQ_INT(t.handled, 1);
    T_EQ_INT(cli_recv(&t, fd, &out, 3, 1500), 0);
    T_EQ_INT(count_responses(out.data, out.len), 3);
    a = strstr(out.data, "\r\n\r\nlater");
    b = strstr(out.data, "\r\n\r\nhello");
    c = strstr(out.data, "\r\n\r\nthird");
    T_ASSERT(a != NULL && b != NULL && c != NULL && a < b && b < c);
    T_EQ_INT(t.handled, 3);
    close(fd);

    /* A pipelined request after the client has shut its write side is still served. */
    buf_reset(&out);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd,
                       "GET /later HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"),
             0);
    shutdown(fd, SHUT_WR);
    T_EQ_INT(cli_recv(&t, fd, &out, -1, 1500), 1);
    T_EQ_INT(count_responses(out.data, out.len), 2);
    close(fd);
    T_EQ_INT(pump_until_conns(&t, 0, 1000), 0);
    buf_free(&out);
    tsrv_stop(&t);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* A large body of known length is read from the socket as it comes, not 4 KiB per loop
 * iteration (libevent's own reads): once the client has sent it, a few iterations take
 * it whole. The bytes are the body's, in order, and a request pipelined right after it
 * is neither swallowed nor lost. A body cut short by the client's EOF is never handled. */
static void
test_large_body_direct(void)
{
    struct tsrv t;
    struct buf out;
    static const char next[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    enum { LEN = 3 * 1024 * 1024, NEXT = sizeof(next) - 1 };
    char *body = xmalloc(LEN), *req, head[128];
    size_t hl, sent = 0;
    int fd, iters = 0, sndbuf = 8 << 20;
    const char *p;
    struct event *tick;
    struct timeval tv = { 0, 20000 }; /* bounds each round's wait */

    T_REQUIRE(tsrv_start(&t, NULL) == 0);
    buf_init(&out, 0);
    for (size_t i = 0; i < LEN; i++) {
        body[i] = (char)('a' + (i * 7 + i / 4096) % 26);
    }
    hl = (size_t)snprintf(head, sizeof(head),
                          "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", LEN);
    req = xmalloc(hl + LEN + 64);
    memcpy(req, head, hl);
    memcpy(req + hl, body, LEN);
    memcpy(req + hl + LEN, next, NEXT);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    /* The head and the first bytes, read by the bufferevent; then the rest in one go,
     * as far as the socket buffers take it without the server reading. */
    T_EQ_INT(cli_send(&t, fd, req, hl + 1000), 0);
    pump(&t, 20);
    sent = hl + 1000;
    while (sent < hl + LEN + NEXT) {
        ssize_t n = send(fd, req + sent, hl + LEN + NEXT - sent, MSG_NOSIGNAL);

        if (n <= 0) {
            break;
        }
        sent += (size_t)n;
    }
    /* Each iteration of the loop reads what has come; count them until the body is
     * handled (the old reads took one per 4 KiB: hundreds for what the buffers hold). */
    tick = event_new(t.base, -1, EV_PERSIST, on_tick, NULL);
    event_add(tick, &tv);
    while (t.handled == 0 && iters < 5000) {
        event_base_loop(t.base, EVLOOP_ONCE); /* one round of callbacks, as the daemon's */
        iters++;
        if (sent < hl + LEN + NEXT) {
            ssize_t n = send(fd, req + sent, hl + LEN + NEXT - sent, MSG_NOSIGNAL);

            if (n > 0) {
                sent += (size_t)n;
            }
        }
    }
    event_free(tick);
    fprintf(stderr, "  %d loop iterations to take a body of %d bytes\n", iters, LEN);
    T_EQ_INT(t.handled >= 1, 1);
    T_ASSERT(iters < 64);
    T_EQ_INT(cli_send(&t, fd, req + sent, hl + LEN + NEXT - sent), 0);
    T_EQ_INT(cli_recv(&t, fd, &out, 2, 5000), 0);
    T_EQ_INT(status_of(out.data), 200);
    p = strstr(out.data, "\r\n\r\n");
    T_REQUIRE(p != NULL && out.len >= (size_t)(p + 4 - out.data) + LEN);
    T_ASSERT(memcmp(p + 4, body, LEN) == 0);
    T_CONTAINS(p + 4 + LEN, "\r\n\r\nhello");
    T_EQ_INT(t.handled, 2);
    close(fd);

    /* The same body as one chunk of a chunked request. */
    buf_reset(&out);
    t.handled = 0;
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    hl = (size_t)snprintf(head, sizeof(head),
                          "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "%x\r\n",
                          LEN);
    memcpy(req, head, hl);
    memcpy(req + hl, body, LEN);
    memcpy(req + hl + LEN, "\r\n0\r\n\r\n", 7);
    sent = 0;
    iters = 0;
    tick = event_new(t.base, -1, EV_PERSIST, on_tick, NULL);
    event_add(tick, &tv);
    while (t.handled == 0 && iters < 5000) {
        if (sent < hl + LEN + 7) {
            ssize_t n = send(fd, req + sent, hl + LEN + 7 - sent, MSG_NOSIGNAL);

            if (n > 0) {
                sent += (size_t)n;
            }
        }
        event_base_loop(t.base, EVLOOP_ONCE);
        iters++;
    }
    event_free(tick);
    fprintf(stderr, "  %d loop iterations to take it as one chunk\n", iters);
    T_EQ_INT(t.handled, 1);
    T_ASSERT(iters < 64);
    T_EQ_INT(cli_recv(&t, fd, &out, 1, 5000), 0);
    p = strstr(out.data, "\r\n\r\n");
    T_REQUIRE(p != NULL && out.len >= (size_t)(p + 4 - out.data) + LEN);
    T_ASSERT(memcmp(p + 4, body, LEN) == 0);
    close(fd);
    t.handled = 2;

    /* Cut short: the client stops after half the body and closes its side. */
    buf_reset(&out);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_send(&t, fd, req, hl + LEN / 2), 0);
    pump(&t, 50);
    shutdown(fd, SHUT_WR);
    (void)cli_recv(&t, fd, &out, -1, 1500);
    T_EQ_INT(t.handled, 2);
    close(fd);
    T_EQ_INT(pump_until_conns(&t, 0, 1000), 0);
    buf_free(&out);
    free(req);
    free(body);
    tsrv_stop(&t);
}

static void
test_chunked(void)
{
    struct tsrv t;
    struct buf out;
    int fd;
    const char *req = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5;name=value\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"
                      "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";

    T_REQUIRE(tsrv_start(&t, NULL) == 0);
    buf_init(&out, 0);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    /* One byte at a time: every parser state resumes where it stopped. */
    for (const char *p = req; *p != '\0'; p++) {
        T_REQUIRE(cli_send(&t, fd, p, 1) == 0);
        event_base_loop(t.base, EVLOOP_NONBLOCK);
    }
    T_EQ_INT(cli_recv(&t, fd, &out, 2, 1000), 0);
    T_EQ_INT(status_of(out.data), 200);
    T_CONTAINS(out.data, "\r\nContent-Length: 12\r\n\r\nhello, world");
    T_CONTAINS(out.data, "\r\n\r\nhello");
    close(fd);

    /* A malformed chunk size. */
    buf_reset(&out);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd,
                       "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "zz\r\nhello\r\n0\r\n\r\n"),
             0);
    T_EQ_INT(cli_recv(&t, fd, &out, -1, 1000), 1);
    T_EQ_INT(status_of(out.data), 400);
    close(fd);

    /* Chunk data not followed by CRLF. */
    buf_reset(&out);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd,
                       "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3\r\nhello\r\n0\r\n\r\n"),
             0);
    T_EQ_INT(cli_recv(&t, fd, &out, -1, 1000), 1);
    T_EQ_INT(status_of(out.data), 400);
    close(fd);
    T_EQ_INT(pump_until_conns(&t, 0, 1000), 0);
    buf_free(&out);
    tsrv_stop(&t);
}

static void
test_expect_continue(void)
{
    struct tsrv t;
    struct http_config cfg = { 0 };
    struct buf out;
    int fd;

    cfg.max_body_bytes = 1024;
    T_REQUIRE(tsrv_start(&t, &cfg) == 0);
    buf_init(&out, 0);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd,
                       "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                       "Content-Length: 5\r\n\r\n"),
             0);
    T_EQ_INT(cli_recv(&t, fd, &out, 1, 1000), 0);
    T_EQ_STR(out.data, "HTTP/1.1 100 Continue\r\n\r\n");
    T_EQ_INT(t.handled, 0);
    T_EQ_INT(cli_sends(&t, fd, "12345"), 0);
    T_EQ_INT(cli_recv(&t, fd, &out, 2, 1000), 0);
    T_CONTAINS(out.data, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n");
    T_ASSERT(out.len > 5 && strcmp(out.data + out.len - 5, "12345") == 0);
    close(fd);

    /* Over the cap: 413 at once, never 100. */
    buf_reset(&out);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd,
                       "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                       "Content-Length: 5000\r\n\r\n"),
             0);
    T_EQ_INT(cli_recv(&t, fd, &out, -1, 1000), 1);
    T_EQ_INT(status_of(out.data), 413);
    T_ASSERT(strstr(out.data, "100 Continue") == NULL);
    close(fd);
    T_EQ_INT(pump_until_conns(&t, 0, 1000), 0);
    buf_free(&out);
    tsrv_stop(&t);
}

static void
test_body_too_large(void)
{
    struct tsrv t;
    struct http_config cfg = { 0 };
    struct buf out, body;
    int fd;

    cfg.max_body_bytes = 1024;
    T_REQUIRE(tsrv_start(&t, &cfg) == 0);
    buf_init(&out, 0);
    buf_init(&body, 0);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1025\r\n\r\n"),
             0);
    T_EQ_INT(cli_recv(&t, fd, &out, -1, 1000), 1);
    T_EQ_INT(status_of(out.data), 413);
    T_CONTAINS(out.data, "Connection: close\r\n");
    T_CONTAINS(out.data, "\"error\":\"too_large\"");
    close(fd);

    /* Exactly at the cap is fine. */
    buf_reset(&out);
    T_REQUIRE(buf_puts(&body, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1024\r\n\r\n") ==
              0);
    for (int i = 0; i < 1024; i++) {
        T_REQUIRE(buf_puts(&body, "z") == 0);
    }
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_send(&t, fd, body.data, body.len), 0);
    T_EQ_INT(cli_recv(&t, fd, &out, 1, 1000), 0);
    T_EQ_INT(status_of(out.data), 200);
    close(fd);

    /* Chunked: the decoded size counts. */
    buf_reset(&out);
    buf_reset(&body);
    T_REQUIRE(buf_puts(&body, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "300\r\n") == 0);
    for (int i = 0; i < 0x300; i++) {
        T_REQUIRE(buf_puts(&body, "y") == 0);
    }
    T_REQUIRE(buf_puts(&body, "\r\n300\r\n") == 0);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_send(&t, fd, body.data, body.len), 0);
    T_EQ_INT(cli_recv(&t, fd, &out, -1, 1000), 1);
    T_EQ_INT(status_of(out.data), 413);
    close(fd);

    /* A chunk size that overflows. */
    buf_reset(&out);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd,
                       "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "fffffffffffffffffffff\r\n"),
             0);
    T_EQ_INT(cli_recv(&t, fd, &out, -1, 1000), 1);
    T_EQ_INT(status_of(out.data), 413);
    close(fd);
    T_EQ_INT(t.handled, 1);
    T_EQ_INT(pump_until_conns(&t, 0, 1000), 0);
    buf_free(&body);
    buf_free(&out);
    tsrv_stop(&t);
}

static void
test_head_too_large(void)
{
    struct tsrv t;
    struct http_config cfg = { 0 };
    struct buf out, req;
    int fd;

    cfg.max_header_bytes = 1024;
    T_REQUIRE(tsrv_start(&t, &cfg) == 0);
    buf_init(&out, 0);
    buf_init(&req, 0);
    T_REQUIRE(buf_puts(&req, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ") == 0);
    for (int i = 0; i < 2000; i++) {
        T_REQUIRE(buf_puts(&req, "a") == 0);
    }
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_send(&t, fd, req.data, req.len), 0);
    T_EQ_INT(cli_recv(&t, fd, &out, -1, 1000), 1);
    T_EQ_INT(status_of(out.data), 431);
    T_CONTAINS(out.data, "Request Header Fields Too Large");
    close(fd);

    /* Many small fields (over the field count, under the byte cap). */
    buf_reset(&out);
    buf_reset(&req);
    T_REQUIRE(buf_puts(&req, "GET /hello HTTP/1.1\r\nHost: x\r\n") == 0);
    for (int i = 0; i < 110; i++) {
        T_REQUIRE(buf_puts(&req, "A:\r\n") == 0);
    }
    T_REQUIRE(buf_puts(&req, "\r\n") == 0);
    T_REQUIRE(req.len < 1024);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_send(&t, fd, req.data, req.len), 0);
    T_EQ_INT(cli_recv(&t, fd, &out, -1, 1000), 1);
    T_EQ_INT(status_of(out.data), 431);
    close(fd);
    T_EQ_INT(t.handled, 0);
    T_EQ_INT(pump_until_conns(&t, 0, 1000), 0);
    buf_free(&req);
    buf_free(&out);
    tsrv_stop(&t);
}

/* Send each request on its own connection to t: every one must get a 400 that closes
 * the connection (and names want, when given), and none may reach the handler. */
static void
expect_each_400(struct tsrv *t, const char *const *reqs, size_t n, const char *want)
{
    struct buf out;
    int fd;

    buf_init(&out, 0);
    for (size_t i = 0; i < n; i++) {
        buf_reset(&out);
        fd = cli_connect(t->port, 0);
        T_REQUIRE(fd >= 0);
        T_EQ_INT(cli_sends(t, fd, reqs[i]), 0);
        T_EQ_INT(cli_recv(t, fd, &out, -1, 1000), 1);
        if (status_of(out.data) != 400) {
            T_FAIL_("request %zu: %s", i, out.data ? out.data : "(nothing)");
        }
        T_CONTAINS(out.data, "\r\nConnection: close\r\n");
        if (want != NULL) {
            T_CONTAINS(out.data, want);
        }
        close(fd);
    }
    T_EQ_INT(t->handled, 0);
    buf_free(&out);
}

static void
test_bad_request(void)
{
    struct tsrv t;
    static const char *const reqs[] = {
        "GET nope HTTP/1.1\r\n", /* refused as soon as the request line is complete */
        "BLAH / HTTP/3\r\nHost: x\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
        "\001\002\003garbage\r\n\r\n",
    };

    T_REQUIRE(tsrv_start(&t, NULL) == 0);
    expect_each_400(&t, reqs, sizeof(reqs) / sizeof(reqs[0]), NULL);
    T_EQ_INT(pump_until_conns(&t, 0, 1000), 0);
    tsrv_stop(&t);
}

/* A bare LF instead of CRLF is refused with 400 wherever the framing has a line end: in
 * the head (request line, fields, the empty line, an empty line before the request) and
 * in chunked framing (size line, after the data, trailer fields, the final empty line).
 * Each request is complete otherwise, so a lenient parser would answer it. */
static void
test_bare_lf(void)
{
    struct tsrv t;
    struct buf out;
    int fd;
    static const char *const reqs[] = {
        "GET /hello HTTP/1.1\n", /* refused as soon as the request line ends */
        "GET /hello HTTP/1.1\nHost: x\r\n\r\n",
        "GET /hello HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n",
        "GET /hello HTTP/1.1\r\nHost: x\r\n\n",
        "GET /hello HTTP/1.0\nConnection: keep-alive\n\n",
        "\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
        "\r\n\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\nhello\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5;ext=1\nhello\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n0\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n0\r\nX-Trailer: t\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n0\r\n\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nhello\r\n0\r\nX-Trailer: t\r\n\n",
    };

    T_REQUIRE(tsrv_start(&t, NULL) == 0);
    expect_each_400(&t, reqs, sizeof(reqs) / sizeof(reqs[0]), "CRLF");

    /* The same chunked body with CRLF throughout is served. */
    buf_init(&out, 0);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd,
                       "\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n"),
             0);
    T_EQ_INT(cli_recv(&t, fd, &out, 1, 1000), 0);
    T_EQ_INT(status_of(out.data), 200);
    T_EQ_STR(body_of(out.data), "hello");
    close(fd);
    T_EQ_INT(pump_until_conns(&t, 0, 1000), 0);
    buf_free(&out);
    tsrv_stop(&t);
}

static void
test_header_timeout(void)
{
    struct tsrv t;
    struct http_config cfg = { 0 };
    struct buf out;
    int64_t start;
    int fd, eof = 0;
    const char *slow =
        "GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    cfg.header_timeout = 0.2;
    T_REQUIRE(tsrv_start(&t, &cfg) == 0);
    buf_init(&out, 0);

    /* Part of a head, then nothing. */
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    start = util_mono_us();
    T_EQ_INT(cli_sends(&t, fd, "GET /hello HTTP/1.1\r\nHo"), 0);
    T_EQ_INT(cli_recv(&t, fd, &out, -1, 1500), 1);
    T_EQ_INT(status_of(out.data), 408);
    T_ASSERT(util_mono_us() - start >= 150000);
    close(fd);

    /* Slowloris: a byte every 30 ms does not extend the deadline. */
    buf_reset(&out);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    start = util_mono_us();
    for (const char *p = slow; *p != '\0' && !eof; p++) {
        if (cli_send(&t, fd, p, 1) == -1) {
            break;
        }
        eof = cli_recv(&t, fd, &out, -1, 30);
    }
    if (!eof) {
        eof = cli_recv(&t, fd, &out, -1, 1000);
    }
    T_EQ_INT(eof, 1);
    T_EQ_INT(status_of(out.data), 408);
    T_ASSERT(util_mono_us() - start < 600000);
    close(fd);

    /* A connection that never sends anything is closed without a reply. */
    buf_reset(&out);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_recv(&t, fd, &out, -1, 1500), 1);
    T_EQ_INT(out.len, 0);
    close(fd);
    T_EQ_INT(t.handled, 0);
    T_EQ_INT(pump_until_conns(&t, 0, 1000), 0);
    buf_free(&out);
    tsrv_stop(&t);
}

static void
test_body_timeout(void)
{
    struct tsrv t;
    struct http_config cfg = { 0 };
    struct buf out;
    int fd;

    cfg.body_timeout = 0.2;
    T_REQUIRE(tsrv_start(&t, &cfg) == 0);
    buf_init(&out, 0);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"),
             0);
    T_EQ_INT(cli_recv(&t, fd, &out, -1, 1500), 1);
    T_EQ_INT(status_of(out.data), 408);
    T_CONTAINS(out.data, "\"error\":\"timeout\"");
    close(fd);
    T_EQ_INT(t.handled, 0);
    T_EQ_INT(pump_until_conns(&t, 0, 1000), 0);
    buf_free(&out);
    tsrv_stop(&t);
}

static void
test_idle_timeout(void)
{
    struct tsrv t;
    struct http_config cfg = { 0 };
    struct buf out;
    int64_t start;
    int fd;

    cfg.idle_timeout = 0.2;
    T_REQUIRE(tsrv_start(&t, &cfg) == 0);
    buf_init(&out, 0);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    T_EQ_INT(cli_recv(&t, fd, &out, 1, 1000), 0);
    T_EQ_INT(status_of(out.data), 200);
    buf_reset(&out);
    start = util_mono_us();
    T_EQ_INT(cli_recv(&t, fd, &out, -1, 1500), 1);
    T_EQ_INT(out.len, 0); /* a quiet close */
    T_ASSERT(util_mono_us() - start >= 150000);
    T_EQ_INT(http_server_conns(t.srv), 0);
    close(fd);
    buf_free(&out);
    tsrv_stop(&t);
}

static void
test_write_timeout(void)
{
    struct tsrv t;
    struct http_config cfg = { 0 };
    int fd;

    cfg.write_timeout = 0.2;
    T_REQUIRE(tsrv_start(&t, &cfg) == 0);
    /* A client that asks for 8 MiB and never reads. */
    fd = cli_connect(t.port, 4096);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    T_EQ_INT(pump_until_conns(&t, 0, 1500), 0);
    close(fd);
    tsrv_stop(&t);
}

static void
test_conn_cap(void)
{
    struct tsrv t;
    struct http_config cfg = { 0 };
    struct buf out;
    int a, b, c, d;

    cfg.max_conns = 2;
    T_REQUIRE(tsrv_start(&t, &cfg) == 0);
    buf_init(&out, 0);
    a = cli_connect(t.port, 0);
    b = cli_connect(t.port, 0);
    T_REQUIRE(a >= 0 && b >= 0);
    T_EQ_INT(pump_until_conns(&t, 2, 1000), 0);
    c = cli_connect(t.port, 0);
    T_REQUIRE(c >= 0);
    T_EQ_INT(cli_sends(&t, c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    T_EQ_INT(cli_recv(&t, c, &out, -1, 1000), 1);
    T_EQ_INT(status_of(out.data), 503);
    T_CONTAINS(out.data, "{\"error\":\"overloaded\",");
    T_CONTAINS(out.data, "\r\nConnection: close\r\n");
    T_CONTAINS(out.data, "\r\nRetry-After: 1\r\n");
    T_EQ_INT(http_server_conns(t.srv), 2);
    T_EQ_INT((int)http_server_refused(t.srv), 1);
    close(c);

    /* The listener keeps serving once a slot is free. */
    close(a);
    T_EQ_INT(pump_until_conns(&t, 1, 1000), 0);
    buf_reset(&out);
    d = cli_connect(t.port, 0);
    T_REQUIRE(d >= 0);
    T_EQ_INT(cli_sends(&t, d, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    T_EQ_INT(cli_recv(&t, d, &out, 1, 1000), 0);
    T_EQ_INT(status_of(out.data), 200);
    T_EQ_INT(t.handled, 1);
    close(b);
    close(d);
    T_EQ_INT(pump_until_conns(&t, 0, 1000), 0);
    buf_free(&out);
    tsrv_stop(&t);
}

/* One client address holds at most max_conns_per_peer connections: past it a new one gets
 * the cap's 503 with Retry-After and is closed, while another address is still served
 * (the total cap is far from reached), and a closed connection frees its slot. */
static void
test_peer_cap(void)
{
    struct tsrv t;
    struct http_config cfg = { 0 };
    struct buf out;
    int a, b, c, d, e;

    cfg.max_conns = 8;
    cfg.max_conns_per_peer = 2;
    T_REQUIRE(tsrv_start(&t, &cfg) == 0);
    buf_init(&out, 0);
    a = cli_connect_from(t.port, 0, "127.0.0.1");
    b = cli_connect_from(t.port, 0, "127.0.0.1");
    T_REQUIRE(a >= 0 && b >= 0);
    T_EQ_INT(pump_until_conns(&t, 2, 1000), 0);
    c = cli_connect_from(t.port, 0, "127.0.0.1");
    T_REQUIRE(c >= 0);
    T_EQ_INT(cli_sends(&t, c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    T_EQ_INT(cli_recv(&t, c, &out, -1, 1000), 1);
    T_EQ_INT(status_of(out.data), 503);
    T_CONTAINS(out.data, "{\"error\":\"overloaded\",");
    T_CONTAINS(out.data, "from this address");
    T_CONTAINS(out.data, "\r\nRetry-After: 1\r\n");
    T_CONTAINS(out.data, "\r\nConnection: close\r\n");
    T_EQ_INT(t.handled, 0);
    T_EQ_INT((int)http_server_refused(t.srv), 1);
    close(c);

    /* Another address is served meanwhile. */
    buf_reset(&out);
    d = cli_connect_from(t.port, 0, "127.0.0.2");
    T_REQUIRE(d >= 0);
    T_EQ_INT(cli_sends(&t, d, "GET /info HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    T_EQ_INT(cli_recv(&t, d, &out, 1, 1000), 0);
    T_EQ_INT(status_of(out.data), 200);
    T_CONTAINS(out.data, "peer=[127.0.0.2]");
    T_EQ_INT(http_server_conns(t.srv), 3);

    /* The first address gets a slot back when one of its connections closes. */
    close(a);
    T_EQ_INT(pump_until_conns(&t, 2, 1000), 0);
    buf_reset(&out);
    e = cli_connect_from(t.port, 0, "127.0.0.1");
    T_REQUIRE(e >= 0);
    T_EQ_INT(cli_sends(&t, e, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    T_EQ_INT(cli_recv(&t, e, &out, 1, 1000), 0);
    T_EQ_INT(status_of(out.data), 200);
    T_EQ_INT(t.handled, 2);
    close(b);
    close(d);
    close(e);
    T_EQ_INT(pump_until_conns(&t, 0, 1000), 0);
    buf_free(&out);
    tsrv_stop(&t);
}

static void
test_delayed_reply(void)
{
    struct tsrv t;
    struct buf out;
    int fd;

    T_REQUIRE(tsrv_start(&t, NULL) == 0);
    buf_init(&out, 0);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    T_EQ_INT(cli_recv(&t, fd, &out, 1, 50), 0);
    T_EQ_INT(out.len, 0);
    T_EQ_INT(cli_recv(&t, fd, &out, 1, 1000), 0);
    T_EQ_INT(status_of(out.data), 200);
    T_EQ_STR(body_of(out.data), "later");
    close(fd);
    T_EQ_INT(pump_until_conns(&t, 0, 1000), 0);
    buf_free(&out);
    tsrv_stop(&t);
}

/* A reply made outside the loop's callbacks (an answer after a commit's sync) goes out
 * at once on a plain connection, before the loop waits for events again, and the next
 * request on the connection is read as usual. */
static void
test_reply_flushed(void)
{
    struct tsrv t;
    struct buf out;
    char tmp[4096];
    ssize_t n = 0;
    int fd;

    T_REQUIRE(tsrv_start(&t, NULL) == 0);
    buf_init(&out, 0);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd, "GET /never HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    for (int i = 0; i < 1000 && t.held == NULL; i++) {
        loop_once(&t);
    }
    T_REQUIRE(t.held != NULL);
    http_reply(t.held, 200, "text/plain", "now", 3);
    t.held = NULL;
    for (int i = 0; i < 200 && n <= 0; i++) { /* the loop does not run meanwhile */
        n = recv(fd, tmp, sizeof(tmp) - 1, 0);
        if (n <= 0) {
            usleep(1000);
        }
    }
    T_ASSERT(n > 0);
    tmp[n > 0 ? n : 0] = '\0';
    T_EQ_INT(status_of(tmp), 200);
    T_EQ_STR(body_of(tmp), "now");
    T_EQ_INT(cli_sends(&t, fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    T_EQ_INT(cli_recv(&t, fd, &out, 1, 1000), 0);
    T_EQ_INT(status_of(out.data), 200);
    T_EQ_STR(body_of(out.data), "hello");
    close(fd);
    T_EQ_INT(pump_until_conns(&t, 0, 1000), 0);
    buf_free(&out);
    tsrv_stop(&t);
}

static void
test_client_gone(void)
{
    struct tsrv t;
    struct linger lg = { 1, 0 };
    int fd;

    T_REQUIRE(tsrv_start(&t, NULL) == 0);
    /* Closed (FIN) while the reply is pending: the reply goes nowhere, nothing leaks. */
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    pump(&t, 20);
    T_EQ_INT(t.handled, 1);
    close(fd);
    pump(&t, 250);
    T_EQ_INT(http_server_conns(t.srv), 0);

    /* Reset: the connection dies at once, the request is orphaned until its reply. */
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    pump(&t, 20);
    T_EQ_INT(t.handled, 2);
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
    T_EQ_INT(pump_until_conns(&t, 0, 60), 0);
    pump(&t, 200); /* the delayed reply lands on the orphan */
    tsrv_stop(&t);
}

static void
test_free_pending(void)
{
    struct tsrv t;
    struct linger lg = { 1, 0 };
    int a, b;

    T_REQUIRE(tsrv_start(&t, NULL) == 0);
    a = cli_connect(t.port, 0);
    b = cli_connect(t.port, 0);
    T_REQUIRE(a >= 0 && b >= 0);
    T_EQ_INT(cli_sends(&t, a, "GET /never HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    T_EQ_INT(cli_sends(&t, b, "GET /never HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    pump(&t, 20);
    T_EQ_INT(t.handled, 2);
    (void)setsockopt(b, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(b);
    T_EQ_INT(pump_until_conns(&t, 1, 500), 0);
    /* One request held on a live connection, one orphaned: the server frees both. */
    tsrv_stop(&t);
    close(a);
}

static void
test_stop_accepting(void)
{
    struct tsrv t;
    struct buf out;
    int a, b, c;

    T_REQUIRE(tsrv_start(&t, NULL) == 0);
    buf_init(&out, 0);
    a = cli_connect(t.port, 0);
    b = cli_connect(t.port, 0);
    T_REQUIRE(a >= 0 && b >= 0);
    T_EQ_INT(cli_sends(&t, a, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    T_EQ_INT(cli_recv(&t, a, &out, 1, 1000), 0);
    buf_reset(&out);
    T_EQ_INT(cli_sends(&t, b, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    pump(&t, 20);
    T_EQ_INT(http_server_conns(t.srv), 2);
    http_server_stop_accepting(t.srv);
    /* a was idle: closed now. b finishes its request, then closes. */
    T_EQ_INT(cli_recv(&t, a, &out, -1, 500), 1);
    T_EQ_INT(out.len, 0);
    T_EQ_INT(cli_recv(&t, b, &out, -1, 1000), 1);
    T_EQ_INT(status_of(out.data), 200);
    T_CONTAINS(out.data, "\r\nConnection: close\r\n");
    T_EQ_STR(body_of(out.data), "later");
    close(a);
    close(b);
    T_EQ_INT(pump_until_conns(&t, 0, 1000), 0);
    /* New connections are no longer taken. */
    c = cli_connect(t.port, 0);
    pump(&t, 30);
    T_EQ_INT(http_server_conns(t.srv), 0);
    if (c >= 0) {
        close(c);
    }
    buf_free(&out);
    tsrv_stop(&t);
}

static void
test_listen_addresses(void)
{
    struct event_base *base = event_base_new();
    struct http_server *srv = http_server_new(base, NULL, handler, NULL);
    char *err = NULL;
    int r;
    static const char *const bad[] = { "nope",         "127.0.0.1", "127.0.0.1:70000",
                                       "[::1",         "[::1]80",   "localhost:80",
                                       "127.0.0.1:8x", "::1:80",    "127.0.0.1:" };

    log_set_level(KG_LOG_ERR);
    T_EQ_INT(http_server_port(srv), -1);
    T_EQ_INT(http_server_listen(srv, "127.0.0.1:0", &err), 0);
    T_ASSERT(http_server_port(srv) > 0);
    T_EQ_INT(http_server_listen(srv, ":0", &err), 0);
    r = http_server_listen(srv, "[::1]:0", &err);
    if (r == -1) {
        /* No IPv6 in this sandbox: only the error path is exercised. */
        T_ASSERT(err != NULL);
        free(err);
        err = NULL;
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (http_server_listen(srv, bad[i], &err) != -1 || err == NULL) {
            T_FAIL_("%s accepted", bad[i]);
        }
        free(err);
        err = NULL;
    }
    http_server_free(srv);
    http_server_free(NULL);
    event_base_free(base);
    log_set_level(KG_LOG_INFO);
}

/* ---- TLS ---- */

/* A self-signed P-256 certificate for "localhost", valid for an hour. */
static SSL_CTX *
tls_server_ctx(X509 **certp)
{
    EVP_PKEY *pkey = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name;
    SSL_CTX *ctx;

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
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509_sign(x, pkey, EVP_sha256());
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL || SSL_CTX_use_certificate(ctx, x) != 1 ||
        SSL_CTX_use_PrivateKey(ctx, pkey) != 1) {
        SSL_CTX_free(ctx);
        ctx = NULL;
    }
    EVP_PKEY_free(pkey);
    *certp = x;
    return ctx;
}

/* Drive a non-blocking SSL call, running the server's loop while it wants I/O. */
static int
tls_retry(struct tsrv *t, SSL *ssl, int r)
{
    int e = SSL_get_error(ssl, r);

    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        loop_once(t);
        return 0;
    }
    return -1;
}

/* POST a 2 MB body over TLS and a GET right behind it, counting the loop's rounds of
 * callbacks until the body is handled; check the echo and the GET's answer. -1 when
 * something failed. */
static int
tls_big_body(struct tsrv *t, SSL *ssl, struct buf *out, int chunked)
{
    static const char next[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    enum { LEN = 2 * 1024 * 1024, NEXT = sizeof(next) - 1 };
    char head[128], *req;
    size_t hl, off = 0, total, tail;
    int iters = 0, handled = t->handled, rc = -1, sndbuf = 8 << 20;
    struct timeval tv = { 0, 20000 };
    struct event *tick = event_new(t->base, -1, EV_PERSIST, on_tick, NULL);
    int64_t end = util_mono_us() + 5000000;
    const char *p;

    if (chunked) { /* one chunk of it all */
        hl = (size_t)snprintf(head, sizeof(head),
                              "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                              "\r\n\r\n%x\r\n",
                              LEN);
    } else {
        hl = (size_t)snprintf(head, sizeof(head),
                              "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", LEN);
    }
    tail = chunked ? 7 : 0;
    total = hl + LEN + tail + NEXT;
    req = xmalloc(total);
    memcpy(req, head, hl);
    for (size_t i = 0; i < LEN; i++) {
        req[hl + i] = (char)('A' + (i * 13 + i / 1000) % 26);
    }
    memcpy(req + hl + LEN, "\r\n0\r\n\r\n", tail);
    /* A request right after the body, in the same TLS record as its last bytes. */
    memcpy(req + hl + LEN + tail, next, NEXT);
    (void)setsockopt(SSL_get_fd(ssl), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    SSL_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE);
    event_add(tick, &tv);
    while (t->handled == handled && iters < 5000 && util_mono_us() < end) {
        while (off < total) {
            int r = SSL_write(ssl, req + off, (int)(total - off));

            if (r <= 0) {
                break;
            }
            off += (size_t)r;
        }
        event_base_loop(t->base, EVLOOP_ONCE); /* one round, as the daemon's */
        iters++;
    }
    event_free(tick);
    fprintf(stderr, "  %d loop rounds to take a body of %d bytes over TLS\n", iters, LEN);
    if (t->handled >= handled + 1 && iters < 16) {
        while (count_responses(out->data, out->len) < 2 && util_mono_us() < end) {
            char tmp[16384];
            int r = SSL_read(ssl, tmp, sizeof(tmp));

            if (r > 0) {
                if (buf_append(out, tmp, (size_t)r) == -1) {
                    abort();
                }
            } else if (tls_retry(t, ssl, r) == -1) {
                break;
            }
        }
        p = out->data != NULL ? strstr(out->data, "\r\n\r\n") : NULL;
        if (p != NULL && out->len - (size_t)(p + 4 - out->data) > LEN &&
            memcmp(p + 4, req + hl, LEN) == 0 && strstr(p + 4 + LEN, "\r\n\r\nhello") != NULL &&
            t->handled == handled + 2) {
            rc = 0;
        }
    }
    free(req);
    return rc;
}

static int
tls_request(struct tsrv *t, SSL *ssl, const char *req, struct buf *out)
{
    int64_t end = util_mono_us() + 2000000;
    size_t off = 0, len = strlen(req);

    while (off < len) {
        int r = SSL_write(ssl, req + off, (int)(len - off));

        if (r > 0) {
            off += (size_t)r;
        } else if (tls_retry(t, ssl, r) == -1 || util_mono_us() > end) {
            return -1;
        }
    }
    while (count_responses(out->data, out->len) < 1) {
        char tmp[4096];
        int r = SSL_read(ssl, tmp, sizeof(tmp));

        if (r > 0) {
            if (buf_append(out, tmp, (size_t)r) == -1) {
                abort();
            }
        } else if (tls_retry(t, ssl, r) == -1 || util_mono_us() > end) {
            return -1;
        }
    }
    return 0;
}

static void
test_tls(void)
{
    struct tsrv t;
    struct http_config cfg = { 0 };
    X509 *cert = NULL;
    SSL_CTX *sctx = tls_server_ctx(&cert), *cctx;
    SSL *ssl;
    struct buf out;
    int64_t end;
    int fd, r;

    T_REQUIRE(sctx != NULL);
    cfg.ssl_ctx = sctx;
    T_REQUIRE(tsrv_start(&t, &cfg) == 0);
    buf_init(&out, 0);
    cctx = SSL_CTX_new(TLS_client_method());
    T_REQUIRE(cctx != NULL);
    X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx), cert);
    SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    ssl = SSL_new(cctx);
    SSL_set_fd(ssl, fd);
    SSL_set1_host(ssl, "localhost");
    end = util_mono_us() + 2000000;
    while ((r = SSL_connect(ssl)) != 1) {
        if (tls_retry(&t, ssl, r) == -1 || util_mono_us() > end) {
            break;
        }
    }
    T_EQ_INT(r, 1);
    T_EQ_INT(SSL_get_verify_result(ssl), X509_V_OK);
    T_EQ_INT(tls_request(&t, ssl, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &out), 0);
    T_EQ_INT(status_of(out.data), 200);
    T_EQ_STR(body_of(out.data), "hello");
    buf_reset(&out);
    /* Keep-alive over TLS. */
    T_EQ_INT(tls_request(&t, ssl, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntls",
                         &out),
             0);
    T_EQ_STR(body_of(out.data), "tls");
    T_EQ_INT(http_server_conns(t.srv), 1);
    /* A body of 2 MB over TLS arrives in a few reads, not one per 80 KiB. */
    buf_reset(&out);
    T_EQ_INT(tls_big_body(&t, ssl, &out, 0), 0);
    buf_reset(&out);
    T_EQ_INT(tls_big_body(&t, ssl, &out, 1), 0);
    /* Connection: close ends with the server's close_notify, not a wait. */
    buf_reset(&out);
    T_EQ_INT(
        tls_request(&t, ssl, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &out),
        0);
    T_CONTAINS(out.data, "\r\nConnection: close\r\n");
    end = util_mono_us() + 500000;
    for (;;) {
        char tmp[64];

        r = SSL_read(ssl, tmp, sizeof(tmp));
        if (r > 0 || tls_retry(&t, ssl, r) == -1 || util_mono_us() > end) {
            break;
        }
    }
    T_EQ_INT(r, 0);
    T_EQ_INT(SSL_get_error(ssl, r), SSL_ERROR_ZERO_RETURN);
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
    T_EQ_INT(pump_until_conns(&t, 0, 1000), 0);

    /* Plain HTTP on the TLS port: the handshake fails and the connection goes. */
    buf_reset(&out);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    T_EQ_INT(cli_recv(&t, fd, &out, -1, 1000), 1);
    T_ASSERT(status_of(out.data) == -1);
    close(fd);
    T_EQ_INT(pump_until_conns(&t, 0, 1000), 0);
    T_EQ_INT(t.handled, 7);

    buf_free(&out);
    SSL_CTX_free(cctx);
    tsrv_stop(&t);
    SSL_CTX_free(sctx);
    X509_free(cert);
}

/* What on_reject saw. */
struct rejects {
    int n;
    int status[8];
    char code[8][32], id[8][24], client[8][16], path[8][16];
};

static void
on_reject(const struct http_reject *rej, void *arg)
{
    struct rejects *r = arg;

    if (r->n < 8) {
        r->status[r->n] = rej->status;
        snprintf(r->code[r->n], sizeof(r->code[0]), "%s", rej->code);
        snprintf(r->id[r->n], sizeof(r->id[0]), "%s", rej->request_id);
        snprintf(r->client[r->n], sizeof(r->client[0]), "%s", rej->client ? rej->client : "-");
        snprintf(r->path[r->n], sizeof(r->path[0]), "%s", rej->path ? rej->path : "-");
    }
    r->n++;
}

/* The X-Request-Id value of a response head (into id, 24 bytes), or "". */
static void
request_id_of(const char *resp, char *id)
{
    const char *p = resp != NULL ? strstr(resp, "\r\nX-Request-Id: ") : NULL;
    size_t n;

    id[0] = '\0';
    if (p != NULL) {
        p += strlen("\r\nX-Request-Id: ");
        n = strcspn(p, "\r");
        if (n < 24) {
            memcpy(id, p, n);
            id[n] = '\0';
        }
    }
}

static void
test_request_id_and_rejects(void)
{
    struct tsrv t;
    struct http_config cfg = { 0 };
    struct rejects r;
    struct buf out;
    char id1[24], id2[24], id3[24];
    int fd;

    memset(&r, 0, sizeof(r));
    cfg.max_body_bytes = 1024;
    cfg.on_reject = on_reject;
    cfg.reject_arg = &r;
    T_REQUIRE(tsrv_start(&t, &cfg) == 0);
    buf_init(&out, 0);
    /* A success carries an id and is not a rejection. */
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    cli_recv(&t, fd, &out, 1, 1000);
    T_EQ_INT(status_of(out.data), 200);
    request_id_of(out.data, id1);
    T_EQ_INT(strlen(id1), 17);
    T_EQ_INT(r.n, 0);
    /* A handler's error: reported with its code, path and id. */
    buf_reset(&out);
    T_EQ_INT(cli_sends(&t, fd, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"), 0);
    cli_recv(&t, fd, &out, 1, 1000);
    T_EQ_INT(status_of(out.data), 404);
    request_id_of(out.data, id2);
    T_ASSERT(strlen(id2) == 17 && strcmp(id1, id2) != 0);
    T_REQUIRE(r.n == 1);
    T_EQ_INT(r.status[0], 404);
    T_EQ_STR(r.code[0], "not_found");
    T_EQ_STR(r.id[0], id2);
    T_EQ_STR(r.path[0], "/nope");
    T_EQ_STR(r.client[0], "-");
    close(fd);
    /* The server's own refusals: 413 after the head, 400 before a request exists. */
    buf_reset(&out);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n"),
             0);
    cli_recv(&t, fd, &out, -1, 1000);
    T_EQ_INT(status_of(out.data), 413);
    request_id_of(out.data, id3);
    T_REQUIRE(r.n == 2);
    T_EQ_STR(r.code[1], "too_large");
    T_EQ_STR(r.id[1], id3);
    T_EQ_STR(r.path[1], "/echo");
    close(fd);
    buf_reset(&out);
    fd = cli_connect(t.port, 0);
    T_REQUIRE(fd >= 0);
    T_EQ_INT(cli_sends(&t, fd, "NOT HTTP\r\n\r\n"), 0);
    cli_recv(&t, fd, &out, -1, 1000);
    T_EQ_INT(status_of(out.data), 400);
    request_id_of(out.data, id3);
    T_REQUIRE(r.n == 3);
    T_EQ_STR(r.code[2], "bad_request");
    T_EQ_STR(r.id[2], id3);
    T_EQ_STR(r.path[2], "-");
    close(fd);
    buf_free(&out);
    tsrv_stop(&t);
}

TEST_LIST = {
    { "parse_valid", test_parse_valid },
    { "parse_incomplete", test_parse_incomplete },
    { "parse_malformed", test_parse_malformed },
    { "parse_limits", test_parse_limits },
    { "get_and_post", test_get_and_post },
    { "request_accessors", test_request_accessors },
    { "keep_alive", test_keep_alive },
    { "pipelined", test_pipelined },
    { "large_body_direct", test_large_body_direct },
    { "reply_flushed", test_reply_flushed },
    { "chunked", test_chunked },
    { "expect_continue", test_expect_continue },
    { "body_too_large", test_body_too_large },
    { "head_too_large", test_head_too_large },
    { "bad_request", test_bad_request },
    { "bare_lf", test_bare_lf },
    { "header_timeout", test_header_timeout },
    { "body_timeout", test_body_timeout },
    { "idle_timeout", test_idle_timeout },
    { "write_timeout", test_write_timeout },
    { "conn_cap", test_conn_cap },
    { "peer_cap", test_peer_cap },
    { "delayed_reply", test_delayed_reply },
    { "client_gone", test_client_gone },
    { "free_pending", test_free_pending },
    { "stop_accepting", test_stop_accepting },
    { "listen_addresses", test_listen_addresses },
    { "tls", test_tls },
    { "request_id_and_rejects", test_request_id_and_rejects },
    { NULL, NULL },
};
