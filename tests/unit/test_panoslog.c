/* test_panoslog.c: the PAN-OS CSV parser and normalizer against every fixture line (source,
 * severity, outcome, alert or event, observables), field-order edge cases, and a corpus of
 * hostile records (truncated, over-long, wrong field count, bad UTF-8, NULs). */
#include "engine/panoslog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/syslog.h"
#include "engine/util.h"
#include "tests/unit/test.h"

#define RECEIVED 1715650385000LL /* 2024-05-14T01:33:05Z */

/* Normalize one whole syslog line (header + CSV) as the listeners do. */
static int
norm_line(const char *line, size_t len, struct alert *a, int *is_alert, char **errp)
{
    struct syslog_msg m;
    struct panoslog_in in;
    const char *why;

    if (syslog_parse(line, len, &m, &why) == -1) {
        memset(a, 0, sizeof(*a));
        return kg_err(errp, "%s", why);
    }
    memset(&in, 0, sizeof(in));
    in.csv = m.body;
    in.len = m.body_len;
    in.msg = line;
    in.msg_len = len;
    in.header_ms = m.time_ms;
    in.received_ms = RECEIVED;
    in.utc_offset_min = 9 * 60;
    return panoslog_normalize(&in, a, is_alert, errp);
}

static int
has_obs(const struct alert *a, const char *type, const char *value, const char *role)
{
    for (size_t i = 0; i < a->nobs; i++) {
        const struct observable *o = &a->obs[i];

        if (strcmp(o->type, type) == 0 && strcmp(o->value, value) == 0 &&
            (role == NULL || (o->role != NULL && strcmp(o->role, role) == 0))) {
            return 1;
        }
    }
    return 0;
}

/* One expected fixture line: file, line number (1-based), what it must become, and up to
 * three observables "type=value@role". */
struct expect {
    const char *file;
    int line;
    const char *source;
    const char *severity;
    const char *outcome;
    int alert;
    const char *obs[3];
};

static const struct expect fixtures[] = {
    { "pan-os-threat.log",
      1,
      "panos.threat",
      "low",
      "blocked",
      1,
      { "ip=203.0.113.88@src", "ip=192.0.2.20@dst", "app=web-browsing@" } },
    { "pan-os-threat.log",
      2,
      "panos.threat",
      "high",
      "succeeded",
      1,
      { "ip=10.10.5.12@src", "url=cdn-sync.example.net/@", "domain=cdn-sync.example.net@" } },
    { "pan-os-threat.log",
      3,
      "panos.threat",
      "low",
      "blocked",
      1,
      { "user=example\\mika.ito@dst", "ip=198.51.100.61@src",
        "hash=918e698d9bbd5efc54c58b7c9b073b5ed47872f1feb074e35ad89b40e080a66d@sha256" } },
    { "pan-os-threat.log",
      4,
      "panos.threat",
      "medium",
      "attempted",
      1,
      { "rule=dmz-web-in@", "host=JP-DMZ-WEB01@dst", NULL } },
    { "pan-os-threat.log", 5, "panos.threat", "high", "blocked", 1, { NULL, NULL, NULL } },
    { "pan-os-threat.log",
      6,
      "panos.threat",
      "low",
      "blocked",
      1,
      { "ip=203.0.113.45@src", NULL, NULL } },
    { "pan-os-traffic.log",
      1,
      "panos.traffic",
      "informational",
      "succeeded",
      0,
      { NULL, NULL, NULL } },
    { "pan-os-traffic.log",
      2,
      "panos.traffic",
      "informational",
      "blocked",
      0,
      { "ip=203.0.113.45@src", "ip=192.0.2.10@dst", NULL } },
    { "pan-os-traffic.log",
      3,
      "panos.traffic",
      "informational",
      "blocked",
      0,
      { NULL, NULL, NULL } },
    { "pan-os-traffic.log",
      5,
      "panos.traffic",
      "informational",
      "succeeded",
      0,
      { "ip=10.10.5.12@src", "ip=198.51.100.77@dst", NULL } },
    { "pan-os-url.log", 1, "panos.threat", "low", "blocked", 1, { NULL, NULL, NULL } },
    { "pan-os-url.log", 4, "panos.threat", "high", "succeeded", 1, { NULL, NULL, NULL } },
    { "pan-os-wildfire.log", 1, "panos.threat", "high", "succeeded", 1, { NULL, NULL, NULL } },
    { "pan-os-wildfire.log",
      2,
      "panos.threat",
      "informational",
      "succeeded",
      1,
      { NULL, NULL, NULL } },
    { "pan-os-globalprotect.log",
      1,
      "panos.globalprotect",
      "low",
      "blocked",
      0,
      { "user=jiro.tanaka@src", "ip=203.0.113.45@src", NULL } },
    { "pan-os-globalprotect.log",
      2,
      "panos.globalprotect",
      "informational",
      "succeeded",
      0,
      { "user=taro.yamada@example.jp@src", "host=JP-LT-0231@src", "ip=10.80.1.14@private" } },
    { "pan-os-system.log",
      1,
      "panos.system",
      "medium",
      "blocked",
      1,
      { "user=admin@src", "ip=203.0.113.45@src", NULL } },
    { "pan-os-system.log",
      2,
      "panos.system",
      "informational",
      "succeeded",
      0,
      { "user=ken.watanabe@src", "ip=10.10.9.5@src", NULL } },
    { "pan-os-system.log", 3, "panos.system", "informational", "unknown", 0, { NULL, NULL, NULL } },
    { "pan-os-config.log",
      1,
      "panos.config",
      "informational",
      "succeeded",
      0,
      { "user=ken.watanabe@src", "ip=10.10.9.5@src", NULL } },
    { "pan-os-config.log",
      3,
      "panos.config",
      "medium",
      "blocked",
      1,
      { "user=jiro.tanaka@src", "ip=10.10.20.31@src", NULL } },
};

/* Line n (1-based) of a fixture file; the caller frees. */
static char *
fixture_line(const char *file, int n, size_t *len)
{
    char path[256], *text, *p, *line = NULL;
    size_t tl;
    char *err = NULL;

    snprintf(path, sizeof(path), "tests/fixtures/%s", file);
    text = util_read_file(path, 1 << 20, &tl, &err);
    free(err);
    if (text == NULL) {
        return NULL;
    }
    p = text;
    for (int i = 1; p != NULL && p < text + tl; i++) {
        char *nl = memchr(p, '\n', (size_t)(text + tl - p));
        size_t l = (size_t)((nl != NULL ? nl : text + tl) - p);

        if (i == n) {
            line = xstrndup(p, l);
            *len = l;
            break;
        }
        p = nl != NULL ? nl + 1 : NULL;
    }
    free(text);
    return line;
}

static void
test_fixtures(void)
{
    for (size_t i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        const struct expect *e = &fixtures[i];
        size_t len = 0;
        char *line = fixture_line(e->file, e->line, &len), *err = NULL;
        struct alert a;
        int is_alert = -1;

        if (line == NULL) {
            T_FAIL_("%s:%d: no such line", e->file, e->line);
            continue;
        }
        if (norm_line(line, len, &a, &is_alert, &err) == -1) {
            T_FAIL_("%s:%d: %s", e->file, e->line, err);
            free(err);
            free(line);
            continue;
        }
        if (strcmp(a.source, e->source) != 0 || strcmp(severity_name(a.severity), e->severity) ||
            strcmp(a.outcome, e->outcome) != 0 || is_alert != e->alert) {
            T_FAIL_("%s:%d: got %s %s %s alert=%d, want %s %s %s alert=%d", e->file, e->line,
                    a.source, severity_name(a.severity), a.outcome, is_alert, e->source,
                    e->severity, e->outcome, e->alert);
        }
        for (int k = 0; k < 3 && e->obs[k] != NULL; k++) {
            char *spec = xstrdup(e->obs[k]), *eq = strchr(spec, '='), *at = strrchr(spec, '@');

            *eq = '\0';
            *at = '\0';
            if (!has_obs(&a, spec, eq + 1, at[1] ? at + 1 : NULL)) {
                T_FAIL_("%s:%d: no observable %s", e->file, e->line, e->obs[k]);
            }
            free(spec);
        }
        T_ASSERT(a.raw != NULL && strncmp(a.raw, "{\"message\":\"<", 13) == 0);
        T_ASSERT(a.time_ms > 0 && a.title != NULL && a.source_id != NULL);
        alert_free(&a);
        free(line);
    }
}

/* Every line of every fixture normalizes; times come from the high-resolution field
 * (JST), so threat line 2 (10:33:05 JST) is 01:33:05 UTC. */
static void
test_every_line_and_time(void)
{
    static const char *const files[] = { "pan-os-threat.log",       "pan-os-traffic.log",
                                         "pan-os-url.log",          "pan-os-wildfire.log",
                                         "pan-os-system.log",       "pan-os-config.log",
                                         "pan-os-globalprotect.log" };
    int total = 0;

    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        for (int n = 1;; n++) {
            size_t len = 0;
            char *line = fixture_line(files[f], n, &len), *err = NULL;
            struct alert a;
            int is_alert;

            if (line == NULL || len == 0) {
                free(line);
                break;
            }
            if (norm_line(line, len, &a, &is_alert, &err) == -1) {
                T_FAIL_("%s:%d: %s", files[f], n, err);
                free(err);
            } else {
                total++;
                if (strcmp(files[f], "pan-os-threat.log") == 0 && n == 2) {
                    T_EQ_INT(a.time_ms, 1715650385114LL);
                    T_EQ_STR(a.source_id, "013201009876/THREAT/7342110928840001296");
                }
                alert_free(&a);
            }
            free(line);
        }
    }
    T_EQ_INT(total, 30);
}

/* The octet-counted IETF stream: three frames, each an RFC 5424 message. */
static void
test_octet_stream(void)
{
    size_t len = 0, pos = 0;
    char *err = NULL,
         *s = util_read_file("tests/fixtures/pan-os-ietf-octet-tls.stream", 1 << 20, &len, &err);
    struct syslog_framer fr = { SYSLOG_FRAMING_UNKNOWN, 65536, 0 };
    int frames = 0;

    T_REQUIRE(s != NULL);
    while (pos < len) {
        size_t used, off, mlen;
        const char *why;
        struct alert a;
        int is_alert;

        T_REQUIRE(syslog_frame(&fr, s + pos, len - pos, &used, &off, &mlen, &why) ==
                  SYSLOG_FRAME_OK);
        if (norm_line(s + pos + off, mlen, &a, &is_alert, &err) == -1) {
            T_FAIL_("frame %d: %s", frames + 1, err);
            free(err);
            err = NULL;
        } else {
            if (frames == 1) {
                T_EQ_STR(a.source, "panos.threat");
                T_ASSERT(has_obs(&a, "ip", "198.51.100.77", "dst"));
            }
            alert_free(&a);
        }
        pos += used;
        frames++;
    }
    T_EQ_INT(frames, 3);
    T_EQ_INT(fr.mode, SYSLOG_FRAMING_OCTET);
    free(s);
}

static void
test_csv(void)
{
    const char *f[8];
    size_t fl[8], nf = 0;
    char scratch[128], *err = NULL;
    const char *in = "a,\"b, \"\"c\"\"\",,{x, y},\"\"";

    T_REQUIRE(panoslog_csv(in, strlen(in), scratch, f, fl, 8, &nf, &err) == 0);
    T_EQ_INT(nf, 5);
    T_EQ_STR(f[0], "a");
    T_EQ_STR(f[1], "b, \"c\"");
    T_EQ_STR(f[2], "");
    T_EQ_STR(f[3], "{x, y}");
    T_EQ_STR(f[4], "");
    T_ASSERT(panoslog_csv("a,", 2, scratch, f, fl, 8, &nf, &err) == 0 && nf == 2);
    T_ASSERT(panoslog_csv("\"abc", 4, scratch, f, fl, 8, &nf, &err) == -1);
    T_ASSERT(strstr(err, "unterminated") != NULL);
    free(err);
    err = NULL;
    T_ASSERT(panoslog_csv("\"a\"b,c", 6, scratch, f, fl, 8, &nf, &err) == -1);
    free(err);
    err = NULL;
    T_ASSERT(panoslog_csv("1,2,3,4,5,6,7,8,9", 17, scratch, f, fl, 8, &nf, &err) == -1);
    free(err);
}

/* Field order: a shorter 9.1-style THREAT (79 fields) and a longer 11.1 one (extra
 * trailing fields) both map by position; a record cut before its sequence number is
 * refused. */
static void
test_field_order(void)
{
    size_t len = 0;
    char *line = fixture_line("pan-os-threat.log", 2, &len), *err = NULL;
    char *csv = strchr(line, ' ');
    struct buf b;
    struct alert a;
    int is_alert, commas = 0;
    size_t cut = 0;

    T_REQUIRE(line != NULL);
    csv = strstr(line, "1,2024");
    /* 79 fields: cut after the 78th comma */
    for (size_t i = 0; csv[i] != '\0'; i++) {
        if (csv[i] == ',' && ++commas == 79) {
            cut = i;
            break;
        }
    }
    T_REQUIRE(cut > 0);
    buf_init(&b, 0);
    (void)!buf_append(&b, csv, cut);
    T_ASSERT(norm_line(b.data, b.len, &a, &is_alert, &err) == 0);
    if (a.source != NULL) {
        T_EQ_STR(a.source, "panos.threat");
        T_ASSERT(has_obs(&a, "ip", "198.51.100.77", "dst"));
        T_EQ_INT(a.time_ms, 1715650385000LL); /* generated time in JST, no hi-res field */
        alert_free(&a);
    }
    buf_reset(&b);
    (void)!buf_puts(&b, csv);
    (void)!buf_puts(&b, ",11.1-flow,cluster-a,future1,\"future, two\"");
    T_ASSERT(norm_line(b.data, b.len, &a, &is_alert, &err) == 0);
    if (a.source != NULL) {
        T_EQ_STR(a.outcome, "succeeded");
        alert_free(&a);
    }
    /* cut before the sequence number (field 37) */
    commas = 0;
    for (size_t i = 0; csv[i] != '\0'; i++) {
        if (csv[i] == ',' && ++commas == 30) {
            cut = i;
            break;
        }
    }
    buf_reset(&b);
    (void)!buf_append(&b, csv, cut);
    T_ASSERT(norm_line(b.data, b.len, &a, &is_alert, &err) == -1);
    T_ASSERT(err != NULL && strstr(err, "THREAT record with 30 fields") != NULL);
    free(err);
    buf_free(&b);
    free(line);
}

/* Hostile records: each is refused with a reason or accepted cleanly, never crashes,
 * and what is stored is valid UTF-8. */
static void
test_hostile(void)
{
    static const char *const refused[] = {
        "",
        "<14>",
        "<999>May 14 10:00:00 h 1,2",
        "<14>1 2024-05-14T10:00:00+09:00",
        "<14>1 not-a-time h - - - - 1,2",
        "<14>1 2024-05-14T10:00:00Z h - - - [unterminated 1,2",
        "1,2024/05/14 10:00:00,0132,TRAFFIC,end",
        "1,2024/05/14 10:00:00,0132,traffic lower,end,2562,x",
        "1,2024/05/14 10:00:00,0132,\"THREAT,url,2562,2024",
        "just some text",
        ",,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,",
    };
    char *err = NULL;
    struct alert a;
    int is_alert;

    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        if (norm_line(refused[i], strlen(refused[i]), &a, &is_alert, &err) == 0) {
            T_FAIL_("accepted: %s", refused[i]);
            alert_free(&a);
        } else {
            T_ASSERT(err != NULL && err[0] != '\0');
        }
        free(err);
        err = NULL;
    }
    {
        /* a NUL inside */
        const char nul[] = "1,2024/05/14 10:00:00,0132,SYSTEM,auth,2562,2024/05/14 10:00:00,,"
                           "auth-fail,,0,0,,medium,\"x\0y\",1,0x0";

        T_ASSERT(norm_line(nul, sizeof(nul) - 1, &a, &is_alert, &err) == -1);
        T_ASSERT(err != NULL && strstr(err, "NUL") != NULL);
        free(err);
        err = NULL;
    }
    {
        /* bad UTF-8 in a field: accepted, the bytes become U+FFFD */
        const char bad[] = "1,2024/05/14 10:00:00,0132,SYSTEM,auth,2562,2024/05/14 10:00:00,,"
                           "auth-fail,,0,0,,medium,\"failed for user '\xff\xfe\xc3' From: "
                           "203.0.113.9.\",77,0x0";

        T_REQUIRE(norm_line(bad, sizeof(bad) - 1, &a, &is_alert, &err) == 0);
        T_ASSERT(strstr(a.title, "\xef\xbf\xbd") != NULL);
        T_ASSERT(has_obs(&a, "ip", "203.0.113.9", "src"));
        T_ASSERT(strstr(a.raw, "\\ufffd") != NULL);
        alert_free(&a);
    }
    {
        /* over-long fields are cut in the title, never stored as observables */
        struct buf b;

        buf_init(&b, 0);
        (void)!buf_puts(&b, "1,2024/05/14 10:00:00,0132,CONFIG,0,2562,2024/05/14 10:00:00,"
                            "10.0.0.1,vsys1,edit,");
        for (int i = 0; i < 6000; i++) {
            (void)!buf_puts(&b, "A");
        }
        (void)!buf_puts(&b, ",Web,Failed, path,99,0x0");
        T_REQUIRE(norm_line(b.data, b.len, &a, &is_alert, &err) == 0);
        T_ASSERT(strlen(a.title) <= 1100);
        T_ASSERT(!has_obs(&a, "user", "A", NULL));
        T_EQ_INT(a.nobs, 1); /* the host only */
        alert_free(&a);
        buf_free(&b);
    }
    {
        /* an unknown type with a valid shape is kept as an event of its own source */
        const char *u = "1,2024/05/14 10:00:00,0132,HIPMATCH,0,2562,2024/05/14 10:00:00,x";

        T_REQUIRE(norm_line(u, strlen(u), &a, &is_alert, &err) == 0);
        T_EQ_STR(a.source, "panos.hipmatch");
        T_EQ_INT(is_alert, 0);
        alert_free(&a);
    }
}

static void
test_headers(void)
{
    struct syslog_msg m;
    const char *why;
    const char *bsd_nohost = "<14>May 14 09:30:02 1,2024/05/14 09:30:02,x";
    const char *bsd = "<14>May  4 09:30:02 PA-1 1,2024";
    const char *ietf =
        "<14>1 2024-05-14T09:31:40.114+09:00 PA - - - [a b=\"x]y\"][c] \xef\xbb\xbfmsg";

    T_REQUIRE(syslog_parse(bsd_nohost, strlen(bsd_nohost), &m, &why) == 0);
    T_ASSERT(m.host == NULL && strncmp(m.body, "1,2024", 6) == 0 && m.pri == 14);
    T_REQUIRE(syslog_parse(bsd, strlen(bsd), &m, &why) == 0);
    T_ASSERT(m.host_len == 4 && strncmp(m.host, "PA-1", 4) == 0);
    T_REQUIRE(syslog_parse(ietf, strlen(ietf), &m, &why) == 0);
    T_ASSERT(m.rfc5424 && m.time_ms == 1715646700114LL && m.body_len == 3);
    T_ASSERT(syslog_parse("<14x", 4, &m, &why) == -1);
    T_ASSERT(syslog_parse("<192>x", 6, &m, &why) == -1);
}

static void
test_framing(void)
{
    struct syslog_framer fr = { SYSLOG_FRAMING_UNKNOWN, 16, 0 };
    size_t used, off, len;
    const char *why;
    const char *lines = "abc\r\ndef\n0123456789abcdefXYZ\nok\n";
    size_t pos = 0, n = strlen(lines);
    int ok = 0, skipped = 0;

    while (pos < n) {
        enum syslog_frame_rc rc = syslog_frame(&fr, lines + pos, n - pos, &used, &off, &len, &why);

        if (rc == SYSLOG_FRAME_MORE) {
            break;
        }
        ok += rc == SYSLOG_FRAME_OK;
        skipped += rc == SYSLOG_FRAME_SKIPPED && why != NULL;
        pos += used;
    }
    T_EQ_INT(ok, 3);
    T_EQ_INT(skipped, 1);
    T_EQ_INT(pos, n);
    /* octet counting: a split frame waits for more, a bad count is fatal */
    fr = (struct syslog_framer){ SYSLOG_FRAMING_UNKNOWN, 100, 0 };
    T_EQ_INT(syslog_frame(&fr, "5 abc", 5, &used, &off, &len, &why), SYSLOG_FRAME_MORE);
    T_EQ_INT(syslog_frame(&fr, "5 abcde3 xyz", 12, &used, &off, &len, &why), SYSLOG_FRAME_OK);
    T_ASSERT(used == 7 && off == 2 && len == 5);
    T_EQ_INT(syslog_frame(&fr, "500 x", 5, &used, &off, &len, &why), SYSLOG_FRAME_FATAL);
    T_EQ_INT(syslog_frame(&fr, "5x abc", 6, &used, &off, &len, &why), SYSLOG_FRAME_FATAL);
    T_EQ_INT(syslog_frame(&fr, "12345678901 ", 12, &used, &off, &len, &why), SYSLOG_FRAME_FATAL);
}

TEST_LIST = {
    { "fixtures", test_fixtures },
    { "every_line_and_time", test_every_line_and_time },
    { "octet_stream", test_octet_stream },
    { "csv", test_csv },
    { "field_order", test_field_order },
    { "hostile", test_hostile },
    { "headers", test_headers },
    { "framing", test_framing },
    { NULL, NULL },
};
