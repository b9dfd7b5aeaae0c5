/* cmd.c: helpers shared by the `kagari` verbs: option parsing, messages, store access. */
#include "engine/cmd.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "engine/config.h"
#include "engine/json.h"
#include "engine/store.h"
#include "engine/testclock.h"

const char *
cmd_default_config(void)
{
    const char *c = getenv("KAGARI_CONFIG");

    return c != NULL && *c != '\0' ? c : "kagari.conf.lua";
}

int
cmd_fail(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "kagari: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int
cmd_parse_opts(int argc, char **argv, const struct option *long_opts, const char *short_opts,
               int (*each)(int c, const char *arg, void *ud), void *ud)
{
    int c;

    optind = 1;
    opterr = 1;
    while ((c = getopt_long(argc, argv, short_opts, long_opts, NULL)) != -1) {
        if (c == 'h') {
            return 1;
        }
        if (c == '?' || each(c, optarg, ud) == -1) {
            return -1;
        }
    }
    return 0;
}

int
cmd_config_opt(int c, const char *arg, void *ud)
{
    if (c != 'c') {
        return -1;
    }
    *(const char **)ud = arg;
    return 0;
}

char *
cmd_new_token(void)
{
    unsigned char rnd[32];
    char hex[65];

    if (util_random(rnd, sizeof(rnd)) == -1) {
        return NULL;
    }
    util_hex(rnd, sizeof(rnd), hex);
    return xasprintf("kg_%s", hex);
}

int
cmd_open_store(const char *config_path, struct config *cfg, struct store **st)
{
    char *err = NULL;

    if (config_load(config_path, cfg, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return -1;
    }
    if (testclock_apply(cfg, 0, &err) == -1 || store_open(cfg->data_dir, st, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        config_free(cfg);
        return -1;
    }
    return 0;
}

int
cmd_parse_when(const char *s, int64_t *ms)
{
    size_t digits = strspn(s, "0123456789.");
    const char *unit = s + digits;
    double secs;

    /* A duration: digits and a unit, nothing else (no sign, exponent or hex). */
    if (digits > 0 &&
        (strcmp(unit, "s") == 0 || strcmp(unit, "ms") == 0 || strcmp(unit, "m") == 0 ||
         strcmp(unit, "h") == 0 || strcmp(unit, "d") == 0)) {
        if (util_parse_duration(s, &secs) == -1 || secs > 36500.0 * 86400) {
            return -1;
        }
        *ms = util_now_ms() - (int64_t)(secs * 1000.0);
        return 0;
    }
    if (strlen(s) == 10 && s[4] == '-' && s[7] == '-') {
        char full[32];

        snprintf(full, sizeof(full), "%sT00:00:00Z", s);
        return util_parse_time(full, ms);
    }
    return util_parse_time(s, ms);
}

int
cmd_parse_count(const char *s, int *n)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (end == s || *end != '\0' || v <= 0 || v > 1000000000L) {
        return -1;
    }
    *n = (int)v;
    return 0;
}

void
cmd_put_text(const char *s, size_t n, size_t max, int keep_nl)
{
    struct buf b;
    int cut = n > max;

    if (cut) {
        /* Back up to a UTF-8 character boundary so that no half character is escaped. */
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80) {
            n--;
        }
    }
    buf_init(&b, 0);
    if (buf_escape_text(&b, s, n, keep_nl ? UTIL_ESC_KEEP_NL : 0) == 0 && b.len > 0) {
        fwrite(b.data, 1, b.len, stdout);
    }
    buf_free(&b);
    if (cut) {
        fputs("...", stdout);
    }
}

void
cmd_print_json(const struct cJSON *v)
{
    char *s = json_print(v);
    const unsigned char *p = (const unsigned char *)s;

    /* Valid JSON may carry DEL, C1 controls and U+2028/9 raw inside strings; a terminal
     * may act on them. They can only be inside strings (the rest is ASCII), so each is
     * written as its \u escape, which decodes to the same text. */
    for (; *p != '\0'; p++) {
        if (*p == 0x7f) {
            fputs("\\u007f", stdout);
        } else if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            printf("\\u%04x", p[1]);
            p++;
        } else if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
            printf("\\u%04x", p[2] == 0xa8 ? 0x2028 : 0x2029);
            p += 2;
        } else {
            putchar(*p);
        }
    }
    putchar('\n');
    free(s);
}

int
cmd_each_tenant(struct store *st, const char *only, int (*fn)(struct store_tenant *, void *),
                void *ud)
{
    struct store_tenant_info *list = NULL;
    size_t n = 0;
    char *err = NULL;
    int rc = 0, found = 0;

    if (store_tenant_list(st, &list, &n, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return -1;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct store_tenant *t;

        if (only != NULL && strcmp(only, list[i].id) != 0) {
            continue;
        }
        found = 1;
        {
            /* A tenant whose database the daemon has not created yet has no runs: do not
             * create it here (as another user, it would lock the daemon out). */
            char *path = xasprintf("%s/tenants/%s.db", store_data_dir(st), list[i].id);
            int exists = access(path, F_OK) == 0;

            free(path);
            if (!exists) {
                continue;
            }
        }
        if (store_tenant_open(st, list[i].id, &t, &err) == -1) {
            fprintf(stderr, "kagari: %s\n", err);
            free(err);
            rc = -1;
            break;
        }
        rc = fn(t, ud);
        store_tenant_close(t);
    }
    free(list);
    if (only != NULL && !found) {
        fprintf(stderr, "kagari: unknown tenant %s\n", only);
        return -1;
    }
    return rc;
}

char *
cmd_read_secret(const char *prompt, size_t max)
{
    char *line = xmalloc(max + 2);
    struct termios old, quiet;
    int tty = isatty(STDIN_FILENO);
    char *out;

    if (tty) {
        fputs(prompt, stderr);
        tcgetattr(STDIN_FILENO, &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    if (fgets(line, (int)max + 2, stdin) == NULL) {
        line[0] = '\0';
    }
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    line[strcspn(line, "\r\n")] = '\0';
    out = xstrdup(line);
    memset(line, 0, max + 2);
    free(line);
    return out;
}

void
cmd_audit(struct store *st, const char *tenant, const char *action, const char *target,
          const char *outcome, const char *detail)
{
    struct passwd *pw = getpwuid(getuid());
    struct store_audit a;
    char actor[80];
    char *err = NULL;

    snprintf(actor, sizeof(actor), "cli:%s", pw != NULL ? pw->pw_name : "?");
    memset(&a, 0, sizeof(a));
    a.time = util_now_ms();
    a.tenant = (char *)tenant;
    a.actor = actor;
    a.action = (char *)action;
    a.target = (char *)target;
    a.outcome = (char *)outcome;
    a.detail = (char *)detail;
    if (store_audit_add(st, &a, &err) == -1) {
        fprintf(stderr, "kagari: audit: %s\n", err);
        free(err);
    }
}

int
cmd_tenants(const char *config_path, const char *only, int (*fn)(struct store_tenant *, void *),
            void *ud)
{
    struct config cfg;
    struct store *st;
    int rc;

    if (cmd_open_store(config_path, &cfg, &st) == -1) {
        return 1;
    }
    rc = cmd_each_tenant(st, only, fn, ud) == 0 ? 0 : 1;
    store_close(st);
    config_free(&cfg);
    return rc;
}

int
cmd_parse_id(const char *s, const char *what, int64_t *id)
{
    char *end = NULL;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || v <= 0 || errno != 0) {
        (void)cmd_fail("not %s %s id: %s", strchr("aeiou", what[0]) ? "an" : "a", what, s);
        return -1;
    }
    *id = (int64_t)v;
    return 0;
}
