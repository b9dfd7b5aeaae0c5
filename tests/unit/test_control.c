/* test_control.c: the control socket on a real unix socket in a temporary folder: the
 * request/reply exchange on an event loop, owner-only mode, unknown and overlong
 * requests, a stale socket file replaced, and the client's "not running". */
#include "engine/control.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine/util.h"
#include "tests/unit/test.h"

struct ctx {
    int calls;
    char last[80];
};

static void
handler(const char *verb, struct buf *reply, void *arg)
{
    struct ctx *c = arg;

    c->calls++;
    snprintf(c->last, sizeof(c->last), "%s", verb);
    (void)!buf_printf(reply, "{\"verb\":\"%s\"}", verb);
}

/* Connect to dir's socket, send data, and drive base until the daemon closes; returns
 * what it answered (malloc'd). */
static char *
exchange(struct event_base *base, const char *dir, const char *data, size_t len)
{
    struct sockaddr_un sa;
    struct buf out;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int64_t end = util_now_ms() + 5000;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, CONTROL_SOCKET);
    if (fd == -1 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1) {
        if (fd != -1) {
            close(fd);
        }
        return NULL;
    }
    (void)!write(fd, data, len);
    buf_init(&out, 0);
    while (util_now_ms() < end) {
        char tmp[512];
        ssize_t r;

        event_base_loop(base, EVLOOP_NONBLOCK);
        r = read(fd, tmp, sizeof(tmp));
        if (r > 0) {
            (void)!buf_append(&out, tmp, (size_t)r);
        } else if (r == 0 || (r < 0 && errno != EAGAIN)) {
            break;
        } else {
            struct pollfd p = { fd, POLLIN, 0 };

            (void)poll(&p, 1, 10);
        }
    }
    close(fd);
    (void)!buf_append(&out, "", 0);
    return out.data != NULL ? buf_take(&out) : xstrdup("");
}

static void
test_exchange(void)
{
    char dir[] = "/tmp/kagari-control-XXXXXX";
    struct event_base *base = event_base_new();
    struct ctx c = { 0, "" };
    struct control *ctl;
    struct stat st;
    char *err = NULL, *path, *out, *reply = NULL;
    char big[200];

    T_REQUIRE(mkdtemp(dir) != NULL && base != NULL);
    path = xasprintf("%s/%s", dir, CONTROL_SOCKET);
    /* Nobody there: the client says so (1), whether or not a stale file exists. */
    T_EQ_INT(control_request(dir, "status", 1000, &reply, &err), 1);
    T_EQ_INT(close(open(path, O_CREAT | O_WRONLY, 0600)), 0);        /* a stale plain file */
    T_EQ_INT(control_request(dir, "status", 1000, &reply, &err), 1); /* nobody listens */
    T_ASSERT(err == NULL);

    ctl = control_start(base, dir, handler, &c, &err);
    T_REQUIRE(ctl != NULL);
    T_EQ_INT(stat(path, &st), 0);
    T_ASSERT(S_ISSOCK(st.st_mode));
    T_EQ_INT(st.st_mode & 0777, 0600);

    out = exchange(base, dir, "status\n", 7);
    T_EQ_STR(out, "{\"verb\":\"status\"}\n");
    free(out);
    out = exchange(base, dir, "reload\n", 7);
    T_EQ_STR(out, "{\"verb\":\"reload\"}\n");
    free(out);
    T_EQ_INT(c.calls, 2);
    out = exchange(base, dir, "format-disk\n", 12);
    T_CONTAINS(out, "unknown request");
    free(out);
    memset(big, 'x', sizeof(big));
    out = exchange(base, dir, big, sizeof(big)); /* overlong: closed unanswered */
    T_EQ_STR(out, "");
    free(out);
    out = exchange(base, dir, "stat", 4); /* no line end: dropped after 2 s */
    T_EQ_STR(out, "");
    free(out);
    T_EQ_INT(c.calls, 2);

    control_free(ctl);
    T_ASSERT(access(path, F_OK) == -1); /* removed */
    T_EQ_INT(control_request(dir, "status", 1000, &reply, &err), 1);

    /* A socket file left by a killed daemon is replaced by the next one. */
    {
        struct sockaddr_un sa;
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);

        memset(&sa, 0, sizeof(sa));
        sa.sun_family = AF_UNIX;
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
        T_EQ_INT(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        close(fd); /* the file stays, nobody listens */
    }
    T_EQ_INT(control_request(dir, "status", 1000, &reply, &err), 1);
    ctl = control_start(base, dir, handler, &c, &err);
    T_REQUIRE(ctl != NULL);
    out = exchange(base, dir, "status\n", 7);
    T_EQ_STR(out, "{\"verb\":\"status\"}\n");
    free(out);
    control_free(ctl);
    rmdir(dir);
    free(path);
    event_base_free(base);
}

static void
test_path_too_long(void)
{
    struct event_base *base = event_base_new();
    char *dir = xmalloc(200);
    char *err = NULL, *reply = NULL;

    memset(dir, 'd', 199);
    dir[0] = '/';
    dir[199] = '\0';
    T_ASSERT(control_start(base, dir, handler, NULL, &err) == NULL);
    T_CONTAINS(err, "longer than a unix socket allows");
    free(err);
    err = NULL;
    T_EQ_INT(control_request(dir, "status", 100, &reply, &err), -1);
    free(err);
    free(dir);
    event_base_free(base);
}

TEST_LIST = {
    { "exchange", test_exchange },
    { "path_too_long", test_path_too_long },
    { NULL, NULL },
};
