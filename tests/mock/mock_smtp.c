/* mock_smtp.c: a small SMTP submission server for the engine's mail tests: one listener
 * with STARTTLS (RFC 3207) and one with implicit TLS (RFC 8314), AUTH PLAIN, and every
 * accepted message recorded whole. Fault modes: refuse (close at connect), fail (451 at
 * the end of DATA: the message is not kept), reject (550: a permanent no), slow (the
 * greeting and the end-of-DATA reply held back). Driven by /_mock/smtp. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>

#include "tests/mock/mock.h"

#define SMTP_LINE_MAX 4096
#define SMTP_DATA_MAX (8 * 1024 * 1024)

struct smtp_conn {
    struct bufferevent *bev;
    int implicit; /* the implicit-TLS listener */
    int tls;      /* TLS is on */
    int in_data;
    int authed;
    int auth_wait; /* "AUTH PLAIN" sent without a response: the next line is it */
    int closing;
    char *user;
    char *from;
    cJSON *rcpt;
    struct buf data;
    struct event *timer; /* a held reply (slow) */
    char *held;
};

static struct {
    struct evconnlistener *plain, *implicit;
    SSL_CTX *ssl;
    int plain_port, tls_port;
    cJSON *messages;
    unsigned long connections, next_id;
    char mode[16];
    int count;
    int delay_ms;
    char user[64], password[64];
    struct mvec conns; /* open connections, freed at stop */
} sm;

static void conn_free(struct smtp_conn *c);

static void
send_line(struct smtp_conn *c, const char *s)
{
    evbuffer_add_printf(bufferevent_get_output(c->bev), "%s\r\n", s);
}

static void
held_cb(evutil_socket_t fd, short what, void *arg)
{
    struct smtp_conn *c = arg;

    (void)fd;
    (void)what;
    send_line(c, c->held);
    free(c->held);
    c->held = NULL;
    bufferevent_enable(c->bev, EV_READ);
}

/* Reply now, or after the slow fault's delay (reading nothing meanwhile). */
static void
reply_maybe_slow(struct smtp_conn *c, const char *s)
{
    if (strcmp(sm.mode, "slow") == 0 && sm.delay_ms > 0) {
        struct timeval tv = { sm.delay_ms / 1000, (sm.delay_ms % 1000) * 1000 };

        c->held = xstrdup(s);
        bufferevent_disable(c->bev, EV_READ);
        evtimer_add(c->timer, &tv);
        return;
    }
    send_line(c, s);
}

static int
take_fault(const char *mode)
{
    if (strcmp(sm.mode, mode) != 0 || sm.count == 0) {
        return 0;
    }
    if (sm.count > 0 && --sm.count == 0) {
        snprintf(sm.mode, sizeof(sm.mode), "none");
    }
    return 1;
}

static void
end_of_data(struct smtp_conn *c)
{
    cJSON *m;
    char line[80];

    c->in_data = 0;
    if (take_fault("fail")) {
        reply_maybe_slow(c, "451 4.3.0 Temporary failure, try again later");
    } else if (take_fault("reject")) {
        reply_maybe_slow(c, "550 5.7.1 Message refused");
    } else {
        m = cJSON_CreateObject();
        cJSON_AddNumberToObject(m, "id", (double)++sm.next_id);
        cJSON_AddNumberToObject(m, "at_ms", (double)util_now_ms());
        jset_str(m, "mail_from", c->from);
        cJSON_AddItemToObject(m, "rcpt", c->rcpt);
        c->rcpt = NULL;
        cJSON_AddStringToObject(m, "data", c->data.data != NULL ? c->data.data : "");
        cJSON_AddBoolToObject(m, "tls", c->tls);
        cJSON_AddStringToObject(m, "listener", c->implicit ? "tls" : "starttls");
        jset_str(m, "auth", c->user);
        cJSON_AddItemToArray(sm.messages, m);
        snprintf(line, sizeof(line), "250 2.0.0 OK queued as %lu", sm.next_id);
        reply_maybe_slow(c, line);
    }
    buf_free(&c->data);
    buf_init(&c->data, SMTP_DATA_MAX);
    free(c->from);
    c->from = NULL;
    cJSON_Delete(c->rcpt);
    c->rcpt = NULL;
}

/* AUTH PLAIN's response: base64 of authzid NUL user NUL password. */
static void
auth_plain(struct smtp_conn *c, const char *b64)
{
    size_t n = 0;
    unsigned char *raw = mock_b64_decode(b64, strlen(b64), &n);
    const char *user = NULL, *pass = NULL;

    if (raw != NULL) {
        const char *p = memchr(raw, '\0', n);

        if (p != NULL && (size_t)(p + 1 - (const char *)raw) < n) {
            user = p + 1;
            p = memchr(user, '\0', n - (size_t)(user - (const char *)raw));
            if (p != NULL) {
                pass = p + 1;
            }
        }
    }
    if (user != NULL && pass != NULL && strcmp(user, sm.user) == 0 &&
        strlen(pass) == n - (size_t)(pass - (const char *)raw) && strcmp(pass, sm.password) == 0) {
        c->authed = 1;
        free(c->user);
        c->user = xstrdup(user);
        send_line(c, "235 2.7.0 Authentication successful");
    } else {
        send_line(c, "535 5.7.8 Authentication credentials invalid");
    }
    free(raw);
}

static void start_tls(struct smtp_conn *c);

static void
command(struct smtp_conn *c, char *line)
{
    if (c->auth_wait) {
        c->auth_wait = 0;
        auth_plain(c, line);
        return;
    }
    if (strncasecmp(line, "EHLO", 4) == 0 || strncasecmp(line, "HELO", 4) == 0) {
        struct evbuffer *out = bufferevent_get_output(c->bev);

        evbuffer_add_printf(out, "250-mock.smtp.test\r\n");
        if (!c->tls) {
            evbuffer_add_printf(out, "250-STARTTLS\r\n");
        } else {
            evbuffer_add_printf(out, "250-AUTH PLAIN\r\n");
        }
        evbuffer_add_printf(out, "250-8BITMIME\r\n250 SIZE %d\r\n", SMTP_DATA_MAX);
    } else if (strcasecmp(line, "STARTTLS") == 0) {
        if (c->tls) {
            send_line(c, "503 5.5.1 TLS already active");
            return;
        }
        send_line(c, "220 2.0.0 Ready to start TLS");
        start_tls(c);
    } else if (strcasecmp(line, "QUIT") == 0) {
        send_line(c, "221 2.0.0 Bye");
        c->closing = 1;
    } else if (strcasecmp(line, "NOOP") == 0 || strcasecmp(line, "RSET") == 0) {
        send_line(c, "250 2.0.0 OK");
    } else if (!c->tls) {
        send_line(c, "530 5.7.0 Must issue a STARTTLS command first");
    } else if (strncasecmp(line, "AUTH PLAIN", 10) == 0) {
        if (line[10] == ' ' && line[11] != '\0') {
            auth_plain(c, line + 11);
        } else {
            c->auth_wait = 1;
            send_line(c, "334 ");
        }
    } else if (!c->authed) {
        send_line(c, "530 5.7.0 Authentication required");
    } else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
        free(c->from);
        c->from = xstrdup(line + 10);
        cJSON_Delete(c->rcpt);
        c->rcpt = cJSON_CreateArray();
        send_line(c, "250 2.1.0 OK");
    } else if (strncasecmp(line, "RCPT TO:", 8) == 0 && c->rcpt != NULL) {
        cJSON_AddItemToArray(c->rcpt, cJSON_CreateString(line + 8));
        send_line(c, "250 2.1.5 OK");
    } else if (strcasecmp(line, "DATA") == 0 && c->rcpt != NULL &&
               cJSON_GetArraySize(c->rcpt) > 0) {
        c->in_data = 1;
        send_line(c, "354 End data with <CR><LF>.<CR><LF>");
    } else {
        send_line(c, "502 5.5.2 Command not recognized or out of sequence");
    }
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
    struct smtp_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char *line;
    size_t n;

    while (!c->closing && c->held == NULL &&
           (line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF)) != NULL) {
        if (c->in_data) {
            if (strcmp(line, ".") == 0) {
                end_of_data(c);
            } else {
                const char *p = line[0] == '.' ? line + 1 : line; /* dot-stuffing */

                if (buf_puts(&c->data, p) == -1 || buf_puts(&c->data, "\r\n") == -1) {
                    c->in_data = 0;
                    send_line(c, "552 5.3.4 Message too big");
                }
            }
        } else if (n > SMTP_LINE_MAX) {
            send_line(c, "500 5.5.2 Line too long");
        } else {
            command(c, line);
        }
        free(line);
        if (c->bev == NULL) {
            return;
        }
    }
    if (evbuffer_get_length(in) > SMTP_DATA_MAX) {
        conn_free(c);
    }
}

static void
write_cb(struct bufferevent *bev, void *arg)
{
    struct smtp_conn *c = arg;

    (void)bev;
    if (c->closing) {
        conn_free(c);
    }
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct smtp_conn *c = arg;

    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        conn_free(c);
    }
}

static void
conn_free(struct smtp_conn *c)
{
    mvec_remove(&sm.conns, c);
    if (c->bev != NULL) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    if (c->timer != NULL) {
        event_free(c->timer);
    }
    free(c->held);
    free(c->user);
    free(c->from);
    cJSON_Delete(c->rcpt);
    buf_free(&c->data);
    free(c);
}

static void
start_tls(struct smtp_conn *c)
{
    SSL *ssl = SSL_new(sm.ssl);
    struct bufferevent *f;

    if (ssl == NULL) {
        c->closing = 1;
        return;
    }
    f = bufferevent_openssl_filter_new(mock.base, c->bev, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                       BEV_OPT_CLOSE_ON_FREE);
    if (f == NULL) {
        SSL_free(ssl);
        c->closing = 1;
        return;
    }
    c->bev = f;
    c->tls = 1;
    c->authed = 0;
    bufferevent_setcb(f, read_cb, write_cb, event_cb, c);
    bufferevent_enable(f, EV_READ | EV_WRITE);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    int implicit = arg != NULL;
    struct smtp_conn *c;

    (void)l;
    (void)sa;
    (void)salen;
    sm.connections++;
    if (take_fault("refuse")) {
        evutil_closesocket(fd);
        return;
    }
    c = xcalloc(1, sizeof(*c));
    mvec_push(&sm.conns, c);
    c->implicit = implicit;
    buf_init(&c->data, SMTP_DATA_MAX);
    c->timer = evtimer_new(mock.base, held_cb, c);
    if (implicit) {
        SSL *ssl = SSL_new(sm.ssl);

        c->bev = bufferevent_openssl_socket_new(mock.base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE);
        c->tls = 1;
    } else {
        c->bev = bufferevent_socket_new(mock.base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (c->bev == NULL) {
        evutil_closesocket(fd);
        conn_free(c);
        return;
    }
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    reply_maybe_slow(c, "220 mock.smtp.test ESMTP ready");
}

static struct evconnlistener *
listen_on(int implicit, int *port)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    struct evconnlistener *l;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    l = evconnlistener_new_bind(mock.base, accept_cb, implicit ? (void *)1 : NULL,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 64,
                                (struct sockaddr *)&sin, sizeof(sin));
    if (l == NULL) {
        return NULL;
    }
    getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin, &len);
    *port = ntohs(sin.sin_port);
    return l;
}

int
mock_smtp_start(SSL_CTX *ssl, char **errp)
{
    sm.ssl = ssl;
    sm.messages = cJSON_CreateArray();
    snprintf(sm.mode, sizeof(sm.mode), "none");
    snprintf(sm.user, sizeof(sm.user), "kagari");
    snprintf(sm.password, sizeof(sm.password), "mail-secret");
    if ((sm.plain = listen_on(0, &sm.plain_port)) == NULL ||
        (sm.implicit = listen_on(1, &sm.tls_port)) == NULL) {
        return kg_err(errp, "cannot listen for SMTP on loopback");
    }
    return 0;
}

void
mock_smtp_stop(void)
{
    if (sm.plain != NULL) {
        evconnlistener_free(sm.plain);
    }
    if (sm.implicit != NULL) {
        evconnlistener_free(sm.implicit);
    }
    while (sm.conns.n > 0) {
        conn_free(sm.conns.v[sm.conns.n - 1]);
    }
    mvec_free(&sm.conns);
    cJSON_Delete(sm.messages);
    memset(&sm, 0, sizeof(sm));
}

cJSON *
mock_smtp_json(void)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddNumberToObject(o, "starttls_port", sm.plain_port);
    cJSON_AddNumberToObject(o, "tls_port", sm.tls_port);
    cJSON_AddNumberToObject(o, "connections", (double)sm.connections);
    cJSON_AddStringToObject(o, "mode", sm.mode);
    cJSON_AddNumberToObject(o, "count", sm.count);
    cJSON_AddItemToObject(
        o, "messages", sm.messages != NULL ? cJSON_Duplicate(sm.messages, 1) : cJSON_CreateArray());
    return o;
}

/* {"mode": "none|refuse|fail|reject|slow", "count": n (-1: always), "delay_ms": n,
 *  "user": ..., "password": ..., "clear": true}. */
int
mock_smtp_config(const cJSON *o, char **errp)
{
    const char *mode = jstr(o, "mode"), *user = jstr(o, "user"), *pass = jstr(o, "password");
    const cJSON *count = cJSON_GetObjectItemCaseSensitive(o, "count");
    const cJSON *delay = cJSON_GetObjectItemCaseSensitive(o, "delay_ms");

    if (mode != NULL) {
        if (strcmp(mode, "none") != 0 && strcmp(mode, "refuse") != 0 && strcmp(mode, "fail") != 0 &&
            strcmp(mode, "reject") != 0 && strcmp(mode, "slow") != 0) {
            return kg_err(errp, "mode: none, refuse, fail, reject or slow");
        }
        snprintf(sm.mode, sizeof(sm.mode), "%s", mode);
        sm.count = -1;
    }
    if (cJSON_IsNumber(count)) {
        sm.count = (int)count->valuedouble;
    }
    if (cJSON_IsNumber(delay)) {
        sm.delay_ms = (int)delay->valuedouble;
    }
    if (user != NULL) {
        snprintf(sm.user, sizeof(sm.user), "%s", user);
    }
    if (pass != NULL) {
        snprintf(sm.password, sizeof(sm.password), "%s", pass);
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "clear"))) {
        cJSON_Delete(sm.messages);
        sm.messages = cJSON_CreateArray();
        sm.connections = 0;
    }
    return 0;
}
