/* fuzz_intake.c: the whole intake, end to end: each input is the bytes a client sends on
 * one connection (request heads, bodies, pipelined requests, garbage), written over
 * loopback to the real HTTP intake of an engine started once in a temporary folder
 * (store, tenant, admit step, group commit). The engine must answer or close, never
 * crash or leak, and every answer must be an HTTP/1.1 status line; after each input a
 * valid alert must still be accepted (the engine keeps serving). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/admit.h"
#include "engine/env.h"
#include "engine/intake.h"
#include "engine/loop.h"
#include "engine/registry.h"
#include "engine/run.h"
#include "engine/store.h"
#include "engine/tenant.h"

#define FUZZ_TOKEN "kg_fuzz_token"
#define FUZZ_ITERATIONS 4000 /* loop passes per input before giving up on an answer */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct {
    int ready;
    char dir[64];
    struct store *st;
    struct config cfg;
    void *intake;
    int port;
    unsigned long seq;
} F;

static void
fuzz_cleanup(void)
{
    char *cmd;

    if (!F.ready) {
        return;
    }
    admit_shutdown();
    intake_source.stop(F.intake);
    tenants_close();
    store_close(F.st);
    loop_free();
    config_free(&F.cfg);
    cmd = xasprintf("rm -rf '%s'", F.dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "fuzz_intake: cannot remove %s\n", F.dir);
    }
    free(cmd);
}

/* Start the engine's intake once: a store with tenant t1 and its token, no playbooks. */
static void
fuzz_start(void)
{
    static const struct tenant_hooks hooks = { env_sandbox_new, run_tenant_close };
    struct run_limits lim = { 1000000, 10, 5 };
    char hash[65], *text, *name, *err = NULL;

    snprintf(F.dir, sizeof(F.dir), "/tmp/kagari-fuzz-intake-XXXXXX");
    if (mkdtemp(F.dir) == NULL) {
        abort();
    }
    registry_init();
    name = xasprintf("%s/kagari.conf.lua", F.dir);
    text = xasprintf("data_dir = \"data\"\n"
                     "intake = { listen = \"127.0.0.1:0\", max_body = \"1MiB\", "
                     "header_timeout = \"2s\", body_timeout = \"2s\" }\n");
    util_sha256_hex(FUZZ_TOKEN, strlen(FUZZ_TOKEN), hash);
    if (config_load_buffer(text, strlen(text), name, &F.cfg, &err) == -1 || loop_init(&err) == -1 ||
        store_open(F.cfg.data_dir, &F.st, &err) == -1 ||
        store_tenant_add(F.st, "t1", "t1", hash, &err) == -1 ||
        tenants_open(F.st, 64u << 20, &F.cfg, &hooks, &err) == -1) {
        fprintf(stderr, "fuzz_intake: %s\n", err ? err : "start failed");
        abort();
    }
    run_init(&lim);
    admit_init();
    if (intake_source.start(&F.cfg, &F.intake, &err) == -1) {
        fprintf(stderr, "fuzz_intake: %s\n", err);
        abort();
    }
    F.port = intake_port(F.intake);
    free(text);
    free(name);
    F.ready = 1;
    atexit(fuzz_cleanup);
}

/* Send data on a new connection, half-close it, and run the loop until the engine has
 * closed the connection; what it answered is returned (malloc'd, *n bytes). */
static char *
exchange(const void *data, size_t size, size_t *n)
{
    struct sockaddr_in sa;
    struct buf out;
    size_t off = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), closed = 0;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)F.port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd == -1 ||
        (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 && errno != EINPROGRESS)) {
        abort();
    }
    buf_init(&out, 0);
    for (int i = 0; i < FUZZ_ITERATIONS && !closed; i++) {
        char tmp[16384];
        ssize_t r;

        if (off < size) {
            r = send(fd, (const char *)data + off, size - off, MSG_NOSIGNAL);
            if (r > 0) {
                off += (size_t)r;
            } else if (r == -1 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN) {
                off = size; /* the engine closed early: what it answered still counts */
            }
            if (off == size) {
                shutdown(fd, SHUT_WR);
            }
        }
        (void)loop_iterate(0);
        while ((r = recv(fd, tmp, sizeof(tmp), 0)) > 0) {
            (void)!buf_append(&out, tmp, (size_t)r);
        }
        if (r == 0 || (r == -1 && errno != EAGAIN && errno != EWOULDBLOCK)) {
            closed = 1;
        }
        if (!closed && i > 100) {
            usleep(500);
        }
    }
    close(fd);
    for (int i = 0; i < 20; i++) { /* let the engine see the close */
        (void)loop_iterate(0);
    }
    *n = out.len;
    return out.data != NULL ? buf_take(&out) : xstrdup("");
}

/* Every answer on the connection starts with an HTTP/1.1 status line. */
static void
check_answers(const char *ans, size_t n)
{
    if (n > 0 && strncmp(ans, "HTTP/1.1 ", 9) != 0) {
        fprintf(stderr, "fuzz_intake: not an HTTP answer: %.80s\n", ans);
        abort();
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *ans, *req;
    size_t n = 0;

    if (!F.ready) {
        fuzz_start();
    }
    ans = exchange(data, size, &n);
    check_answers(ans, n);
    free(ans);
    /* The engine keeps serving: a valid alert is accepted right after. */
    {
        char body[128];

        snprintf(body, sizeof(body), "{\"source\":\"fuzz.check\",\"source_id\":\"c-%lu\"}",
                 ++F.seq);
        req =
            xasprintf("POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " FUZZ_TOKEN
                      "\r\nContent-Type: application/json\r\nContent-Length: "
                      "%zu\r\nConnection: close\r\n\r\n%s",
                      strlen(body), body);
        ans = exchange(req, strlen(req), &n);
        if (n < 12 || strncmp(ans, "HTTP/1.1 202", 12) != 0) {
            fprintf(stderr, "fuzz_intake: a valid alert after the input got: %.200s\n", ans);
            abort();
        }
        free(ans);
        free(req);
    }
    return 0;
}
