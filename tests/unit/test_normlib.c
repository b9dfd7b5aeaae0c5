/* test_normlib.c: the normalizers' helpers: member paths, vendor time formats, IP
 * addresses in canonical form, URLs and their domains, ids and severity arithmetic. */
#include "engine/normlib.h"

#include <stdlib.h>
#include <string.h>

#include "engine/json.h"
#include "tests/unit/test.h"

static cJSON *
parse(const char *text)
{
    cJSON *obj = NULL;
    char *err = NULL;

    if (json_parse_strict(text, strlen(text), JSON_MAX_DEPTH, &obj, &err) == -1) {
        T_FAIL_("%s: %s", text, err);
        free(err);
    }
    return obj;
}

static void
test_paths(void)
{
    cJSON *o = parse("{\"a\":{\"b\":{\"c\":\"x\",\"n\":\"50126\",\"e\":\"\",\"z\":null,"
                     "\"t\":true,\"s\":\"False\",\"f\":1.5}},\"@odata.type\":\"y\"}");
    double d = 0;
    char buf[32];

    T_REQUIRE(o != NULL);
    T_EQ_STR(normlib_str(o, "a.b.c"), "x");
    T_ASSERT(normlib_str(o, "a.b.e") == NULL); /* empty counts as absent */
    T_ASSERT(normlib_get(o, "a.b.z") == NULL); /* null too */
    T_ASSERT(normlib_get(o, "a.b.c.d") == NULL);
    T_ASSERT(normlib_get(o, "a.x.c") == NULL);
    T_ASSERT(normlib_str(o, "@odata.type") == NULL); /* a dotted key needs json_get */
    T_EQ_INT(normlib_num(o, "a.b.n", &d), 0);
    T_EQ_INT((long long)d, 50126);
    T_EQ_INT(normlib_num(o, "a.b.c", &d), -1);
    T_EQ_INT(normlib_bool(o, "a.b.t"), 1);
    T_EQ_INT(normlib_bool(o, "a.b.s"), 0);
    T_EQ_INT(normlib_bool(o, "a.b.c"), -1);
    T_EQ_STR(normlib_text(o, "a.b.f", buf, sizeof(buf)), "1.5");
    T_EQ_STR(normlib_text(o, "a.b.n", buf, sizeof(buf)), "50126");
    T_EQ_STR(normlib_text(o, "a.b", buf, sizeof(buf)), "");
    cJSON_Delete(o);
    /* Keys that share a prefix with the segment, are a prefix of it or are longer; empty
     * keys and empty segments; a path through a non-object. */
    o = parse("{\"user\":\"u\",\"userId\":\"i\",\"us\":\"s\",\"\":{\"\":\"e\",\"k\":\"ek\"},"
              "\"p\":{\"userPrincipalName\":\"upn\",\"userPrincipal\":\"short\"},\"x\":[1]}");
    T_REQUIRE(o != NULL);
    T_EQ_STR(normlib_str(o, "user"), "u");
    T_EQ_STR(normlib_str(o, "userId"), "i");
    T_EQ_STR(normlib_str(o, "us"), "s");
    T_ASSERT(normlib_get(o, "use") == NULL);
    T_ASSERT(normlib_get(o, "userIdX") == NULL);
    T_ASSERT(normlib_get(o, "u") == NULL);
    T_EQ_STR(normlib_str(o, "p.userPrincipalName"), "upn");
    T_EQ_STR(normlib_str(o, "p.userPrincipal"), "short");
    T_ASSERT(normlib_get(o, "p.userPrincipalNam") == NULL);
    T_EQ_STR(normlib_str(o, ".k"), "ek"); /* the empty key, then k */
    T_EQ_STR(normlib_str(o, ".."), "e");
    T_ASSERT(normlib_get(o, "..k") == NULL); /* "e" is no object */
    T_ASSERT(normlib_get(o, "x.0") == NULL);
    T_ASSERT(normlib_get(o, "user.x") == NULL);
    T_ASSERT(normlib_get(o, "p.") == normlib_get(o, "p")); /* a trailing dot ends the path */
    cJSON_Delete(o);
}

static void
test_times(void)
{
    static const struct {
        const char *s;
        long long ms; /* -1: refused */
    } t[] = {
        { "2024-05-14T00:12:41.5520331Z", 1715645561552LL },
        { "2024-05-14T00:12:41.5520331+00:00", 1715645561552LL },
        { "2024-05-14T09:12:41+09:00", 1715645561000LL },
        { "2024-05-14T00:12:41", 1715645561000LL },    /* no zone: UTC */
        { "2024-05-14T00:12:41.25", 1715645561250LL }, /* no zone: UTC */
        { "5/14/2024 12:12:41 AM", 1715645561000LL },  /* US form, midnight hour */
        { "5/14/2024 1:45:10 PM", 1715694310000LL },   /* US form, afternoon */
        { "8/22/2022 6:07:16 PM", 1661191636000LL },
        { "5/14/2024 00:12:41", 1715645561000LL }, /* US date, 24-hour clock */
        { "13/14/2024 1:00:00 PM", -1 },
        { "5/14/2024 13:00:00 PM", -1 },
        { "5/14/2024 1:00:00 XM", -1 },
        { "yesterday", -1 },
        { "", -1 },
        { "2024-05-14", -1 },
        { "2024-05-14T00:12:41ZZ", -1 },
    };

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int64_t ms = 0;
        int rc = normlib_time(t[i].s, &ms);

        if (t[i].ms < 0 ? rc != -1 : (rc != 0 || ms != t[i].ms)) {
            T_FAIL_("\"%s\": rc %d ms %lld, want %lld", t[i].s, rc, (long long)ms, t[i].ms);
        }
    }
}

static void
test_observables(void)
{
    struct alert a;

    memset(&a, 0, sizeof(a));
    normlib_obs(&a, "ip", "2001:DB8:0:0:0:0:0:1", "src");
    normlib_obs(&a, "ip", "[2001:db8::1]:443", "src"); /* the same address: once */
    normlib_obs(&a, "ip", "10.0.0.4:49680", "dst");
    normlib_obs(&a, "ip", "not-an-ip", "dst");
    normlib_obs(&a, "ip", "999.1.1.1", "dst");
    normlib_obs(&a, "user", "Taro.Yamada@Example.JP", NULL);
    normlib_obs(&a, "host", "", NULL);
    normlib_obs(&a, "host", NULL, NULL);
    T_REQUIRE(a.nobs == 3);
    T_EQ_STR(a.obs[0].value, "2001:db8::1");
    T_EQ_STR(a.obs[1].value, "10.0.0.4");
    T_EQ_STR(a.obs[2].value, "taro.yamada@example.jp");
    T_ASSERT(a.obs[2].role == NULL);
    alert_free(&a);

    normlib_url(&a, "https://User@CDN-Sync.Example.net:8443/x?y=1", "dst");
    normlib_url(&a, "paste.example.com/raw/1", "dst");   /* firewall style, no scheme */
    normlib_url(&a, "http://198.51.100.77/poll", "dst"); /* an address: no domain */
    normlib_url(&a, "http://[2001:db8::1]/", "dst");
    T_REQUIRE(a.nobs == 6);
    T_EQ_STR(a.obs[1].value, "cdn-sync.example.net");
    T_EQ_STR(a.obs[1].type, "domain");
    T_EQ_STR(a.obs[3].value, "paste.example.com");
    T_EQ_STR(a.obs[4].type, "url");
    T_EQ_STR(a.obs[5].type, "url");
    alert_free(&a);

    for (int i = 0; i < 300; i++) { /* the cap */
        char v[32];

        snprintf(v, sizeof(v), "host-%d", i);
        normlib_obs(&a, "host", v, NULL);
    }
    T_EQ_INT(a.nobs, NORMLIB_OBS_MAX);
    alert_free(&a);
}

static void
test_ids_and_levels(void)
{
    struct alert a;
    const char *parts[3] = { "a", NULL, "c" };
    char big[400];

    memset(&a, 0, sizeof(a));
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    normlib_set_id(&a, "short-id");
    T_EQ_STR(a.source_id, "short-id");
    normlib_set_id(&a, big); /* too long for a key: its hash */
    T_EQ_INT(strlen(a.source_id), 64);
    normlib_set_id_parts(&a, parts, 3);
    T_EQ_INT(strlen(a.source_id), 64);
    alert_free(&a);
    T_EQ_INT(normlib_sev_add(SEV_HIGH, 1), SEV_CRITICAL);
    T_EQ_INT(normlib_sev_add(SEV_CRITICAL, 1), SEV_CRITICAL);
    T_EQ_INT(normlib_sev_add(SEV_INFO, -1), SEV_INFO);
    T_EQ_INT(normlib_ms_severity("hidden"), SEV_INFO);
    T_EQ_INT(normlib_ms_severity("unknown"), SEV_MEDIUM);
    T_EQ_INT(normlib_ms_severity("High"), SEV_HIGH);
    T_EQ_INT(normlib_ms_severity("bogus"), -1);
    T_EQ_INT(normlib_log_class(SEV_LOW), ALERT_CLASS_EVENT);
    T_EQ_INT(normlib_log_class(SEV_MEDIUM), ALERT_CLASS_ALERT);
}

TEST_LIST = {
    { "paths", test_paths },
    { "times", test_times },
    { "observables", test_observables },
    { "ids_and_levels", test_ids_and_levels },
    { NULL, NULL },
};
