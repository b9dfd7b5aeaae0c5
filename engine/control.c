/* control.c: the daemon's local control socket (status, reload, stop) and its client. */
#include "engine/control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine/log.h"

#define CONTROL_LINE_MAX 64
#define CONTROL_READ_SECS 2     /* a client has this long to send its request line */
#define CONTROL_REPLY_MAX 65536 /* the client reads at most this much */
#define CONTROL_MAX_CLIENTS 16  /* connections served at once; more are closed at once */

struct control_conn {
    struct control *ctl;
    struct event *ev;
    int fd;
    size_t len;
    char line[CONTROL_LINE_MAX + 1];
    struct control_conn *next;
};

struct control {
    struct event_base *base;
    struct event *accept_ev;
    int fd;
    char *path;
    control_handler fn;
    void *arg;
    struct control_conn *conns;
    int nconns;
};

/* Build the socket address of data_dir's control socket. -1 when the path does not fit
 * sun_path (108 bytes on Linux). */
static int
control_addr(const char *data_dir, struct sockaddr_un *sa, char **errp)
{
    int n;

    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s", data_dir, CONTROL_SOCKET);
    if (n < 0 || (size_t)n >= sizeof(sa->sun_path)) {
        return kg_err(errp, "%s/%s: path longer than a unix socket allows (%zu bytes)", data_dir,
                      CONTROL_SOCKET, sizeof(sa->sun_path) - 1);
    }
    return 0;
}

static void
conn_close(struct control_conn *c)
{
    struct control *ctl = c->ctl;

    for (struct control_conn **pp = &ctl->conns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    }
    ctl->nconns--;
    event_free(c->ev);
    close(c->fd);
    free(c);
}

/* Write the whole reply. The socket is non-blocking and a reply is small, so it fits the
 * socket buffer; a client that does not read simply loses the rest. */
static void
conn_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

        if (w <= 0) {
            if (w < 0 && errno == EINTR) {
                continue;
            }
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

static void
conn_answer(struct control_conn *c)
{
    struct buf reply;

    buf_init(&reply, 0);
    if (strcmp(c->line, "status") == 0 || strcmp(c->line, "reload") == 0 ||
        strcmp(c->line, "stop") == 0 || strcmp(c->line, "clock") == 0 ||
        strncmp(c->line, "clock ", 6) == 0 || strncmp(c->line, "stall ", 6) == 0) {
        log_info("control.request verb=%s", c->line);
        c->ctl->fn(c->line, &reply, c->ctl->arg);
    } else {
        (void)!buf_puts(&reply, "{\"error\":\"unknown request (status, reload, stop or clock)\"}");
    }
    (void)!buf_puts(&reply, "\n");
    conn_write_all(c->fd, reply.data, reply.len);
    buf_free(&reply);
}

static void
conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct control_conn *c = arg;

    if (what & EV_TIMEOUT) {
        conn_close(c);
        return;
    }
    for (;;) {
        ssize_t r = recv(fd, c->line + c->len, CONTROL_LINE_MAX - c->len, 0);
        char *nl;

        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return; /* wait for the rest of the line */
        }
        if (r <= 0) {
            conn_close(c);
            return;
        }
        c->len += (size_t)r;
        c->line[c->len] = '\0';
        nl = memchr(c->line, '\n', c->len);
        if (nl != NULL) {
            *nl = '\0';
            conn_answer(c);
            conn_close(c);
            return;
        }
        if (c->len == CONTROL_LINE_MAX) {
            conn_close(c); /* not our protocol */
            return;
        }
    }
}

/* Is the peer of fd our own user (or root)? The folder is 0700 already; this holds even
 * when an operator loosened it. */
static int
peer_allowed(int fd)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1) {
        return 0;
    }
    return cred.uid == 0 || cred.uid == geteuid();
}

static void
accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    struct control *ctl = arg;
    struct timeval tv = { CONTROL_READ_SECS, 0 };
    struct control_conn *c;
    int fd;

    (void)what;
    fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd == -1) {
        return;
    }
    if (ctl->nconns >= CONTROL_MAX_CLIENTS || !peer_allowed(fd)) {
        log_warn("control.refused reason=%s", ctl->nconns >= CONTROL_MAX_CLIENTS ? "busy" : "uid");
        close(fd);
        return;
    }
    c = xcalloc(1, sizeof(*c));
    c->ctl = ctl;
    c->fd = fd;
    c->ev = event_new(ctl->base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
    if (c->ev == NULL) {
        abort(); /* only fails on OOM, like xmalloc */
    }
    c->next = ctl->conns;
    ctl->conns = c;
    ctl->nconns++;
    event_add(c->ev, &tv);
}

struct control *
control_start(struct event_base *base, const char *data_dir, control_handler fn, void *arg,
              char **errp)
{
    struct sockaddr_un sa;
    struct control *ctl;
    int fd;

    if (control_addr(data_dir, &sa, errp) == -1) {
        return NULL;
    }
    /* Left by a daemon that was killed: we hold the data folder's lock, so it is stale. */
    if (unlink(sa.sun_path) == -1 && errno != ENOENT) {
        kg_err(errp, "remove stale %s: %s", sa.sun_path, strerror(errno));
        return NULL;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        kg_err(errp, "control socket: %s", strerror(errno));
        return NULL;
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 || chmod(sa.sun_path, 0600) == -1 ||
        listen(fd, 16) == -1) {
        kg_err(errp, "control socket %s: %s", sa.sun_path, strerror(errno));
        close(fd);
        unlink(sa.sun_path);
        return NULL;
    }
    ctl = xcalloc(1, sizeof(*ctl));
    ctl->base = base;
    ctl->fd = fd;
    ctl->path = xstrdup(sa.sun_path);
    ctl->fn = fn;
    ctl->arg = arg;
    ctl->accept_ev = event_new(base, fd, EV_READ | EV_PERSIST, accept_cb, ctl);
    if (ctl->accept_ev == NULL) {
        abort();
    }
    event_add(ctl->accept_ev, NULL);
    return ctl;
}

void
control_free(struct control *ctl)
{
    if (ctl == NULL) {
        return;
    }
    while (ctl->conns != NULL) {
        conn_close(ctl->conns);
    }
    event_free(ctl->accept_ev);
    close(ctl->fd);
    unlink(ctl->path);
    free(ctl->path);
    free(ctl);
}

/* Wait until fd is ready for events or the deadline passes. 0, or -1 on timeout. */
static int
wait_fd(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        struct pollfd p = { fd, events, 0 };
        int64_t left = deadline_ms - util_now_ms();
        int r;

        if (left <= 0) {
            return -1;
        }
        r = poll(&p, 1, (int)left);
        if (r > 0) {
            return 0;
        }
        if (r < 0 && errno != EINTR) {
            return -1;
        }
    }
}

int
control_request(const char *data_dir, const char *verb, int timeout_ms, char **reply, char **errp)
{
    struct sockaddr_un sa;
    int64_t deadline = util_now_ms() + timeout_ms;
    struct buf b;
    char *line;
    int fd, rc = -1;

    *reply = NULL;
    if (control_addr(data_dir, &sa, errp) == -1) {
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        return kg_err(errp, "socket: %s", strerror(errno));
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
        int e = errno;

        close(fd);
        if (e == ENOENT || e == ECONNREFUSED) {
            return 1;
        }
        return kg_err(errp, "connect %s: %s", sa.sun_path, strerror(e));
    }
    line = xasprintf("%s\n", verb);
    conn_write_all(fd, line, strlen(line));
    free(line);
    buf_init(&b, CONTROL_REPLY_MAX);
    for (;;) {
        char tmp[4096];
        ssize_t r;

        if (wait_fd(fd, POLLIN, deadline) == -1) {
            kg_err(errp, "no answer from the daemon within %d ms", timeout_ms);
            goto out;
        }
        r = recv(fd, tmp, sizeof(tmp), 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            kg_err(errp, "read %s: %s", sa.sun_path, strerror(errno));
            goto out;
        }
        if (r == 0) {
            break;
        }
        if (buf_append(&b, tmp, (size_t)r) == -1) {
            kg_err(errp, "the daemon's answer is over %d bytes", CONTROL_REPLY_MAX);
            goto out;
        }
    }
    if (b.len == 0) {
        kg_err(errp, "the daemon closed the control connection without an answer");
        goto out;
    }
    *reply = buf_take(&b);
    rc = 0;
out:
    buf_free(&b);
    close(fd);
    return rc;
}
