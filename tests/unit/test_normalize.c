/* test_normalize.c: the generic normalizer's rules and rejections, the registry of
 * source-specific normalizers, and the alert model (names, ownership, alert_to_json). */
#include "engine/normalize.h"

#include <stdlib.h>
#include <string.h>

#include "engine/alert.h"
#include "engine/json.h"
#include "engine/util.h"
#include "tests/unit/test.h"

#define RECEIVED 1715650385000LL /* 2024-05-14T01:33:05Z */

/* Parse text strictly and normalize it. Returns 0 with *a filled, or -1 with the message
 * in *errp (caller frees). */
static int
norm(const char *text, const char *default_source, struct alert *a, char **errp)
{
    cJSON *obj = NULL;
    int rc;

    *errp = NULL;
    if (json_parse_strict(text, strlen(text), JSON_MAX_DEPTH, &obj, errp) == -1) {
        memset(a, 0, sizeof(*a));
        return -1;
    }
    rc = normalize_alert(obj, default_source, RECEIVED, a, errp);
    cJSON_Delete(obj);
    return rc;
}

/* Assert text is rejected with a message containing want, and *a left empty. */
#define T_NORM_FAILS(text, want)                                                                   \
    do {                                                                                           \
        struct alert a_;                                                                           \
        char *e_ = NULL;                                                                           \
        if (norm(text, NULL, &a_, &e_) == 0) {                                                     \
            T_FAIL_("accepted: %s", text);                                                         \
            alert_free(&a_);                                                                       \
        } else {                                                                                   \
            T_CONTAINS(e_, want);                                                                  \
            T_ASSERT(a_.source == NULL && a_.raw == NULL && a_.nobs == 0);                         \
        }                                                                                          \
        free(e_);                                                                                  \
    } while (0)

/* Normalize text (must succeed) and return field source_id copied (caller frees). */
static char *
source_id_of(const char *text)
{
    struct alert a;
    char *err = NULL, *id = NULL;

    if (norm(text, NULL, &a, &err) == -1) {
        T_FAIL_("rejected %s: %s", text, err);
        free(err);
        return xstrdup("(rejected)");
    }
    id = xstrdup(a.source_id);
    alert_free(&a);
    return id;
}

static void
test_minimal_defaults(void)
{
    struct alert a;
    char *err = NULL;
    const char *text = "{\"source\":\"entra.signin\",\"x\":[1,2]}";
    char hex[65];

    T_REQUIRE(norm(text, NULL, &a, &err) == 0);
    T_EQ_STR(a.source, "entra.signin");
    T_EQ_STR(a.raw, "{\"source\":\"entra.signin\",\"x\":[1,2]}");
    util_sha256_hex(a.raw, strlen(a.raw), hex);
    T_EQ_STR(a.source_id, hex);
    T_EQ_INT(a.time_ms, RECEIVED);
    T_EQ_INT(a.received_ms, RECEIVED);
    T_EQ_STR(a.title, "entra.signin");
    T_ASSERT(a.category == NULL && a.vendor_severity == NULL);
    T_EQ_INT(a.severity, SEV_INFO);
    T_EQ_STR(a.outcome, "unknown");
    T_EQ_INT(a.nobs, 0);
    T_EQ_INT(a.id, 0);
    alert_free(&a);
    T_ASSERT(a.source == NULL && a.obs == NULL);
    alert_free(&a); /* idempotent */
    alert_free(NULL);
}

static void
test_full(void)
{
    struct alert a;
    char *err = NULL;
    const char *text = "{\"source\":\"defender.alert\",\"source_id\":\"da-0001\","
                       "\"time\":\"2024-05-14T10:33:05.5+09:00\",\"title\":\"LSASS dump\","
                       "\"category\":\"CredentialAccess\",\"vendor_severity\":\"High\","
                       "\"severity\":\"CRITICAL\",\"outcome\":\"succeeded\","
                       "\"observables\":[{\"type\":\"host\",\"value\":\"jp-srv-fs02\","
                       "\"role\":\"victim\"},{\"type\":\"ip\",\"value\":\"198.51.100.77\"},"
                       "{\"type\":\"user\",\"value\":\"svc_backup\",\"role\":null,\"x\":1}],"
                       "\"extra\":{\"kept\":\"in raw\"}}";

    T_REQUIRE(norm(text, "ignored.default", &a, &err) == 0);
    T_EQ_STR(a.source, "defender.alert");
    T_EQ_STR(a.source_id, "da-0001");
    T_EQ_INT(a.time_ms, 1715650385500LL);
    T_EQ_INT(a.received_ms, RECEIVED);
    T_EQ_STR(a.title, "LSASS dump");
    T_EQ_STR(a.category, "CredentialAccess");
    T_EQ_STR(a.vendor_severity, "High");
    T_EQ_INT(a.severity, SEV_CRITICAL);
    T_EQ_STR(a.outcome, "succeeded");
    T_REQUIRE(a.nobs == 3);
    T_EQ_STR(a.obs[0].type, "host");
    T_EQ_STR(a.obs[0].value, "jp-srv-fs02");
    T_EQ_STR(a.obs[0].role, "victim");
    T_EQ_STR(a.obs[1].value, "198.51.100.77");
    T_ASSERT(a.obs[1].role == NULL);
    T_ASSERT(a.obs[2].role == NULL);
    T_CONTAINS(a.raw, "\"extra\":{\"kept\":\"in raw\"}");
    alert_free(&a);
}

static void
test_source(void)
{
    struct alert a;
    char *err = NULL;

    T_NORM_FAILS("{}", "source: required");
    T_NORM_FAILS("{\"source\":\"Entra.SignIn\"}", "source: expected 1 to 64 characters");
    T_NORM_FAILS("{\"source\":\"\"}", "source: expected 1 to 64");
    T_NORM_FAILS("{\"source\":\"a b\"}", "source: expected");
    T_NORM_FAILS("{\"source\":"
                 "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
                 "source: expected 1 to 64");
    T_NORM_FAILS("{\"source\":5}", "source: expected a string");
    /* Keys are case-sensitive: "Source" is not "source". */
    T_NORM_FAILS("{\"Source\":\"entra.signin\"}", "source: required");
    T_REQUIRE(norm("{\"Source\":\"entra.signin\"}", "azure.bastion", &a, &err) == 0);
    T_EQ_STR(a.source, "azure.bastion");
    alert_free(&a);
    T_REQUIRE(norm("{\"source\":null}", "azure.waf", &a, &err) == 0);
    T_EQ_STR(a.source, "azure.waf");
    alert_free(&a);
    T_ASSERT(norm("{\"x\":1}", "Bad Source", &a, &err) == -1);
    T_CONTAINS(err, "source: expected");
    free(err);
}

static void
test_source_id(void)
{
    char *id;

    id = source_id_of("{\"source\":\"s\",\"source_id\":42}");
    T_EQ_STR(id, "42");
    free(id);
    id = source_id_of("{\"source\":\"s\",\"source_id\":-7}");
    T_EQ_STR(id, "-7");
    free(id);
    id = source_id_of("{\"source\":\"s\",\"source_id\":9007199254740991}");
    T_EQ_STR(id, "9007199254740991");
    free(id);
    id = source_id_of("{\"source\":\"s\",\"source_id\":\"12345678901234567890\"}");
    T_EQ_STR(id, "12345678901234567890");
    free(id);
    id = source_id_of("{\"source\":\"s\",\"source_id\":\" Mixed Case \\u00e9 \"}");
    T_EQ_STR(id, " Mixed Case \xc3\xa9 ");
    free(id);
    /* Never dedup on a rounded number. */
    T_NORM_FAILS("{\"source\":\"s\",\"source_id\":12345678901234567890}",
                 "source_id: use a string for numbers beyond 2^53");
    T_NORM_FAILS("{\"source\":\"s\",\"source_id\":9007199254740993}", "source_id: use a string");
    T_NORM_FAILS("{\"source\":\"s\",\"source_id\":9007199254740992}", "source_id: use a string");
    T_NORM_FAILS("{\"source\":\"s\",\"source_id\":1.5}", "source_id: use a string");
    T_NORM_FAILS("{\"source\":\"s\",\"source_id\":1e300}", "source_id: use a string");
    T_NORM_FAILS("{\"source\":\"s\",\"source_id\":\"\"}", "source_id: must be 1 to 256 bytes");
    T_NORM_FAILS("{\"source\":\"s\",\"source_id\":true}",
                 "source_id: expected a string or an integer");
    T_NORM_FAILS("{\"source\":\"s\",\"source_id\":{}}", "source_id: expected");
}

static void
test_source_id_cap_and_dedup(void)
{
    char text[600];
    char *a, *b;

    snprintf(text, sizeof(text), "{\"source\":\"s\",\"source_id\":\"%0256d\"}", 7);
    a = source_id_of(text);
    T_EQ_INT(strlen(a), 256);
    free(a);
    snprintf(text, sizeof(text), "{\"source\":\"s\",\"source_id\":\"%0257d\"}", 7);
    T_NORM_FAILS(text, "source_id: must be 1 to 256 bytes");
    /* Default ids: the same object gives the same id, a different one another. */
    a = source_id_of("{\"source\":\"s\",\"n\":1}");
    b = source_id_of("{ \"source\" : \"s\", \"n\" : 1 }");
    T_EQ_STR(a, b);
    free(b);
    b = source_id_of("{\"source\":\"s\",\"n\":2}");
    T_ASSERT(strcmp(a, b) != 0);
    T_EQ_INT(strlen(a), 64);
    free(a);
    free(b);
}

static void
test_time(void)
{
    struct alert a;
    char *err = NULL;

    T_REQUIRE(
        norm("{\"source\":\"s\",\"time\":\"2024-05-14T00:58:12.3310000Z\"}", NULL, &a, &err) == 0);
    T_EQ_INT(a.time_ms, 1715648292331LL);
    alert_free(&a);
    T_REQUIRE(norm("{\"source\":\"s\",\"time\":1715650385.25}", NULL, &a, &err) == 0);
    T_EQ_INT(a.time_ms, 1715650385250LL);
    alert_free(&a);
    T_REQUIRE(norm("{\"source\":\"s\",\"time\":1715650385}", NULL, &a, &err) == 0);
    T_EQ_INT(a.time_ms, 1715650385000LL);
    alert_free(&a);
    T_REQUIRE(norm("{\"source\":\"s\",\"time\":null}", NULL, &a, &err) == 0);
    T_EQ_INT(a.time_ms, RECEIVED);
    alert_free(&a);
    T_NORM_FAILS("{\"source\":\"s\",\"time\":\"2024-05-14 01:33\"}",
                 "time: expected an RFC 3339 timestamp");
    T_NORM_FAILS("{\"source\":\"s\",\"time\":\"yesterday\"}", "time: expected an RFC 3339");
    T_NORM_FAILS("{\"source\":\"s\",\"time\":1715650385000}", "time: epoch seconds out of range");
    T_NORM_FAILS("{\"source\":\"s\",\"time\":-1}", "time: epoch seconds out of range");
    T_NORM_FAILS("{\"source\":\"s\",\"time\":true}",
                 "time: expected an RFC 3339 string or epoch seconds");
}

static void
test_title_category(void)
{
    struct alert a;
    char *err = NULL;
    char *text, *big = xmalloc(1100);

    memset(big, 'x', 1025);
    big[1025] = '\0';
    text = xasprintf("{\"source\":\"s\",\"title\":\"%s\"}", big);
    T_NORM_FAILS(text, "title: longer than 1024 bytes");
    free(text);
    big[1024] = '\0';
    text = xasprintf("{\"source\":\"s\",\"title\":\"%s\"}", big);
    T_REQUIRE(norm(text, NULL, &a, &err) == 0);
    T_EQ_INT(strlen(a.title), 1024);
    alert_free(&a);
    free(text);
    free(big);
    T_NORM_FAILS("{\"source\":\"s\",\"title\":7}", "title: expected a string");
    T_REQUIRE(norm("{\"source\":\"s\",\"title\":\"\"}", NULL, &a, &err) == 0);
    T_EQ_STR(a.title, "s");
    alert_free(&a);
    T_NORM_FAILS("{\"source\":\"s\",\"category\":[]}", "category: expected a string");
}

static void
test_severity(void)
{
    struct alert a;
    char *err = NULL;
    static const struct {
        const char *text;
        int sev;
        const char *vendor;
    } ok[] = {
        { "{\"source\":\"s\",\"severity\":\"HIGH\"}", SEV_HIGH, NULL },
        { "{\"source\":\"s\",\"severity\":\"Info\"}", SEV_INFO, NULL },
        { "{\"source\":\"s\",\"severity\":\"informational\"}", SEV_INFO, NULL },
        { "{\"source\":\"s\",\"severity\":\"low\"}", SEV_LOW, NULL },
        { "{\"source\":\"s\",\"severity\":3}", SEV_HIGH, NULL },
        { "{\"source\":\"s\",\"severity\":0}", SEV_INFO, NULL },
        { "{\"source\":\"s\",\"severity\":4.0}", SEV_CRITICAL, NULL },
        { "{\"source\":\"s\",\"vendor_severity\":\"Medium\"}", SEV_MEDIUM, "Medium" },
        { "{\"source\":\"s\",\"vendor_severity\":\"Sev2\"}", SEV_INFO, "Sev2" },
        { "{\"source\":\"s\",\"vendor_severity\":3}", SEV_INFO, "3" },
        { "{\"source\":\"s\",\"vendor_severity\":2.5}", SEV_INFO, "2.5" },
        { "{\"source\":\"s\",\"vendor_severity\":\"high\",\"severity\":\"low\"}", SEV_LOW, "high" },
    };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (norm(ok[i].text, NULL, &a, &err) == -1) {
            T_FAIL_("rejected %s: %s", ok[i].text, err);
            free(err);
            err = NULL;
            continue;
        }
        T_EQ_INT(a.severity, ok[i].sev);
        if (ok[i].vendor != NULL) {
            T_EQ_STR(a.vendor_severity, ok[i].vendor);
        } else {
            T_ASSERT(a.vendor_severity == NULL);
        }
        alert_free(&a);
    }
    T_NORM_FAILS("{\"source\":\"s\",\"severity\":\"severe\"}",
                 "severity: expected one of informational, low, medium, high, critical");
    T_NORM_FAILS("{\"source\":\"s\",\"severity\":5}", "severity: expected an integer 0 to 4");
    T_NORM_FAILS("{\"source\":\"s\",\"severity\":-1}", "severity: expected an integer 0 to 4");
    T_NORM_FAILS("{\"source\":\"s\",\"severity\":2.5}", "severity: expected an integer 0 to 4");
    T_NORM_FAILS("{\"source\":\"s\",\"severity\":true}", "severity: expected a level name");
    T_NORM_FAILS("{\"source\":\"s\",\"vendor_severity\":{}}", "vendor_severity: expected a string");
}

static void
test_outcome(void)
{
    struct alert a;
    char *err = NULL;

    T_REQUIRE(norm("{\"source\":\"s\",\"outcome\":\"blocked\"}", NULL, &a, &err) == 0);
    T_EQ_STR(a.outcome, "blocked");
    alert_free(&a);
    T_NORM_FAILS("{\"source\":\"s\",\"outcome\":\"Succeeded\"}",
                 "outcome: expected one of unknown, blocked, attempted, succeeded");
    T_NORM_FAILS("{\"source\":\"s\",\"outcome\":1}", "outcome: expected one of");
}

static void
test_observables(void)
{
    char *text;
    struct buf b;

    T_NORM_FAILS("{\"source\":\"s\",\"observables\":{}}", "observables: expected an array");
    T_NORM_FAILS("{\"source\":\"s\",\"observables\":[1]}", "observables[0]: expected an object");
    T_NORM_FAILS("{\"source\":\"s\",\"observables\":[{\"type\":\"ip\",\"value\":\"a\"},"
                 "{\"type\":\"user\",\"value\":\"b\"},{\"type\":\"mac\",\"value\":\"c\"}]}",
                 "observables[2].type: expected one of user, ip, host, device, url, domain, "
                 "hash, email, process");
    T_NORM_FAILS("{\"source\":\"s\",\"observables\":[{\"type\":\"IP\",\"value\":\"a\"}]}",
                 "observables[0].type: expected one of");
    T_NORM_FAILS("{\"source\":\"s\",\"observables\":[{\"value\":\"a\"}]}",
                 "observables[0].type: expected one of");
    T_NORM_FAILS("{\"source\":\"s\",\"observables\":[{\"type\":\"ip\"}]}",
                 "observables[0].value: expected a string");
    T_NORM_FAILS("{\"source\":\"s\",\"observables\":[{\"type\":\"ip\",\"value\":7}]}",
                 "observables[0].value: expected a string");
    T_NORM_FAILS("{\"source\":\"s\",\"observables\":[{\"type\":\"ip\",\"value\":\"\"}]}",
                 "observables[0].value: must be 1 to 4096 bytes");
    T_NORM_FAILS("{\"source\":\"s\",\"observables\":[{\"type\":\"ip\",\"value\":\"a\","
                 "\"role\":1}]}",
                 "observables[0].role: expected a string");

    buf_init(&b, 0);
    T_REQUIRE(buf_puts(&b, "{\"source\":\"s\",\"observables\":[{\"type\":\"url\",\"value\":\"") ==
              0);
    for (int i = 0; i < 4097; i++) {
        T_REQUIRE(buf_puts(&b, "u") == 0);
    }
    T_REQUIRE(buf_puts(&b, "\"}]}") == 0);
    T_NORM_FAILS(b.data, "observables[0].value: must be 1 to 4096 bytes");
    buf_free(&b);

    buf_init(&b, 0);
    T_REQUIRE(buf_puts(&b, "{\"source\":\"s\",\"observables\":[") == 0);
    for (int i = 0; i < 257; i++) {
        T_REQUIRE(buf_printf(&b, "%s{\"type\":\"ip\",\"value\":\"10.0.0.%d\"}", i ? "," : "",
                             i % 250) == 0);
    }
    T_REQUIRE(buf_puts(&b, "]}") == 0);
    text = buf_take(&b);
    T_NORM_FAILS(text, "observables: at most 256 entries");
    free(text);
}

static void
test_not_object(void)
{
    struct alert a;
    char *err = NULL;
    cJSON *arr = cJSON_CreateArray();

    T_EQ_INT(normalize_alert(arr, "s", RECEIVED, &a, &err), -1);
    T_CONTAINS(err, "expected a JSON object");
    free(err);
    cJSON_Delete(arr);
}

static void
test_azure_record(void)
{
    struct alert a;
    char *err = NULL;
    /* A record shaped like an Azure Bastion diagnostic log (fixtures/azure-bastion.json). */
    const char *text =
        "{\"time\":\"2024-05-14T00:58:12.331Z\",\"resourceId\":\"/SUBSCRIPTIONS/3A9E/"
        "BASTIONHOSTS/BAS-JP-HUB\",\"operationName\":\"Microsoft.Network/BastionHost/connect\","
        "\"category\":\"BastionAuditLogs\",\"level\":\"Informational\",\"properties\":{"
        "\"userName\":\"azureadmin\",\"clientIpAddress\":\"192.0.2.10\",\"clientPort\":53122}}";

    /* The Bastion normalizer knows the shape (it once went to the generic rules and came
     * out with no observables): the optional members it lacks are simply absent. */
    T_REQUIRE(norm(text, NULL, &a, &err) == 0);
    T_EQ_STR(a.source, "azure.bastion");
    T_EQ_INT(a.time_ms, 1715648292331LL);
    T_CONTAINS(a.title, "Bastion");
    T_EQ_INT(strlen(a.source_id), 64);
    T_REQUIRE(a.nobs == 2);
    T_EQ_STR(a.obs[0].value, "azureadmin");
    T_EQ_STR(a.obs[1].value, "192.0.2.10");
    T_EQ_STR(a.obs[1].role, "src");
    alert_free(&a);
    /* A record in the generic form (a valid source and a member only that form has)
     * follows the generic rules whatever its shape. */
    T_REQUIRE(norm("{\"source\":\"it.azure\",\"category\":\"BastionAuditLogs\","
                   "\"outcome\":\"blocked\",\"properties\":{}}",
                   NULL, &a, &err) == 0);
    T_EQ_STR(a.source, "it.azure");
    T_EQ_STR(a.category, "BastionAuditLogs");
    T_EQ_STR(a.outcome, "blocked");
    alert_free(&a);
}

/* Vendors' records with a member "source" of their own (a Graph riskDetection's, one a
 * forwarder added), valid as our source name or not: the family that knows the shape
 * takes them, unless the record is in our generic form. */
static void
test_vendor_source_member(void)
{
    static const char risk[] =
        "\"id\":\"d1\",\"riskEventType\":\"unfamiliarFeatures\",\"riskLevel\":\"medium\","
        "\"riskState\":\"atRisk\",\"detectedDateTime\":\"2024-05-14T01:09:26Z\","
        "\"userPrincipalName\":\"jiro.tanaka@example.jp\",\"ipAddress\":\"203.0.113.45\"";
    static const struct {
        const char *extra; /* members before the riskDetection's own */
        const char *want;  /* the source it is taken for, NULL: rejected */
    } cases[] = {
        { "\"source\":\"IdentityProtection\",", "entra.risk" },
        { "\"source\":\"activeDirectory\",", "entra.risk" },
        { "\"source\":\"identityprotection\",", "entra.risk" }, /* a valid name */
        { "\"source\":\"entra.risk\",", "entra.risk" },
        { "\"source\":null,", "entra.risk" },
        { "\"source\":42,", "entra.risk" },
        { "\"source\":\"mysiem\",\"title\":\"t\",\"severity\":\"high\",", "entra.risk" },
        /* The generic form: a member only it has. */
        { "\"source\":\"mysiem\",\"observables\":[],", "mysiem" },
        { "\"source\":\"mysiem\",\"source_id\":\"x1\",", "mysiem" },
        { "\"source\":\"mysiem\",\"outcome\":\"blocked\",", "mysiem" },
        { "\"source\":\"mysiem\",\"class\":\"event\",", "mysiem" },
        { "\"source\":\"mysiem\",\"vendor_severity\":\"5\",", "mysiem" },
        /* Not a valid name with a generic member: the vendor's shape still decides. */
        { "\"source\":\"Identity Protection\",\"outcome\":\"blocked\",", "entra.risk" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct alert a;
        char *err = NULL;
        char *text = xasprintf("{%s%s}", cases[i].extra, risk);

        T_REQUIRE(norm(text, NULL, &a, &err) == 0);
        T_EQ_STR(a.source, cases[i].want);
        if (strcmp(cases[i].want, "entra.risk") == 0) {
            T_ASSERT(a.nobs >= 2); /* the user and the address: the family's work */
        }
        alert_free(&a);
        free(text);
    }
    /* A vendor's "source" on a shape nobody knows: rejected, saying both. */
    {
        struct alert a;
        char *err = NULL;

        T_ASSERT(norm("{\"source\":\"IdentityProtection\",\"x\":1}", NULL, &a, &err) == -1);
        T_CONTAINS(err, "source: expected");
        T_CONTAINS(err, "not a known record shape");
        free(err);
    }
}

/* Test normalizers: one claims {"kind":"custom"}, one fails on {"kind":"broken"}. */
static int
custom_normalizer(const cJSON *obj, const char *default_source, struct alert *a, char **errp)
{
    const char *kind = json_get_string(obj, "kind");

    (void)default_source;
    if (kind == NULL || strcmp(kind, "custom") != 0) {
        return 0;
    }
    if (json_get(obj, "bad") != NULL) {
        kg_err(errp, "custom: bad member");
        return -1;
    }
    a->source = xstrdup("custom.src");
    a->severity = SEV_HIGH;
    alert_add_observable(a, "domain", "cdn-sync.example.net", "c2");
    return 1;
}

static int
broken_normalizer(const cJSON *obj, const char *default_source, struct alert *a, char **errp)
{
    const char *kind = json_get_string(obj, "kind");

    (void)default_source;
    (void)errp;
    if (kind == NULL || strcmp(kind, "broken") != 0) {
        return 0;
    }
    a->title = xstrdup("half done"); /* then fails without a message */
    return -1;
}

static void
test_registered_normalizers(void)
{
    struct alert a;
    char *err = NULL;

    normalize_register("test.custom", custom_normalizer);
    normalize_register("test.broken", broken_normalizer);
    T_REQUIRE(norm("{\"kind\":\"custom\",\"severity\":\"nonsense\"}", NULL, &a, &err) == 0);
    T_EQ_STR(a.source, "custom.src");
    T_EQ_INT(a.severity, SEV_HIGH);
    T_EQ_STR(a.title, "custom.src");
    T_EQ_STR(a.outcome, "unknown");
    T_EQ_STR(a.raw, "{\"kind\":\"custom\",\"severity\":\"nonsense\"}");
    T_EQ_INT(strlen(a.source_id), 64);
    T_EQ_INT(a.time_ms, RECEIVED);
    T_EQ_INT(a.received_ms, RECEIVED);
    T_REQUIRE(a.nobs == 1);
    T_EQ_STR(a.obs[0].role, "c2");
    alert_free(&a);
    T_NORM_FAILS("{\"kind\":\"custom\",\"bad\":1}", "custom: bad member");
    T_NORM_FAILS("{\"kind\":\"broken\"}", "normalizer test.broken: failed");
    /* Objects the registered ones decline still get the generic rules. */
    T_REQUIRE(norm("{\"kind\":\"other\",\"source\":\"g\"}", NULL, &a, &err) == 0);
    T_EQ_STR(a.source, "g");
    alert_free(&a);
}

static void
test_names(void)
{
    T_EQ_INT(severity_from_name("informational"), SEV_INFO);
    T_EQ_INT(severity_from_name("INFO"), SEV_INFO);
    T_EQ_INT(severity_from_name("Low"), SEV_LOW);
    T_EQ_INT(severity_from_name("medium"), SEV_MEDIUM);
    T_EQ_INT(severity_from_name("hIgH"), SEV_HIGH);
    T_EQ_INT(severity_from_name("critical"), SEV_CRITICAL);
    T_EQ_INT(severity_from_name("crit"), -1);
    T_EQ_INT(severity_from_name(""), -1);
    T_EQ_INT(severity_from_name(NULL), -1);
    T_EQ_STR(severity_name(SEV_INFO), "informational");
    T_EQ_STR(severity_name(SEV_CRITICAL), "critical");
    T_EQ_STR(severity_name(5), "?");
    T_EQ_STR(severity_name(-1), "?");
    T_EQ_INT(outcome_valid("attempted"), 0);
    T_EQ_INT(outcome_valid("Attempted"), -1);
    T_EQ_INT(outcome_valid(NULL), -1);
    T_EQ_INT(observable_type_valid("process"), 0);
    T_EQ_INT(observable_type_valid("email"), 0);
    T_EQ_INT(observable_type_valid("mac"), -1);
}

static void
test_alert_to_json(void)
{
    struct alert a;
    char *s;

    memset(&a, 0, sizeof(a));
    a.id = 17;
    a.source = xstrdup("panos.threat");
    a.source_id = xstrdup("7368912345");
    a.time_ms = 1715650385123LL;
    a.received_ms = 1715650386000LL;
    a.title = xstrdup("Threat \"x\"");
    a.category = xstrdup("spyware");
    a.severity = SEV_HIGH;
    a.outcome = xstrdup("blocked");
    alert_add_observable(&a, "ip", "203.0.113.45", "attacker");
    alert_add_observable(&a, "host", "jp-lt-0231", NULL);
    a.raw = xstrdup("{\"b\":1,\"a\":[true,null]}");
    s = alert_to_json(&a);
    T_EQ_STR(s, "{\"id\":17,\"source\":\"panos.threat\",\"source_id\":\"7368912345\","
                "\"time\":\"2024-05-14T01:33:05.123Z\",\"received\":\"2024-05-14T01:33:06.000Z\","
                "\"title\":\"Threat \\\"x\\\"\",\"category\":\"spyware\",\"vendor_severity\":null,"
                "\"severity\":\"high\",\"outcome\":\"blocked\",\"class\":\"alert\","
                "\"observables\":["
                "{\"type\":\"ip\",\"value\":\"203.0.113.45\",\"role\":\"attacker\"},"
                "{\"type\":\"host\",\"value\":\"jp-lt-0231\",\"role\":null}],"
                "\"raw\":{\"b\":1,\"a\":[true,null]}}");
    free(s);

    /* Raw that is not JSON is embedded as a string. */
    free(a.raw);
    a.raw = xstrdup("<14>May 14 10:33:05 PA-5220 1,2,THREAT");
    s = alert_to_json(&a);
    T_CONTAINS(s, "\"raw\":\"<14>May 14 10:33:05 PA-5220 1,2,THREAT\"}");
    free(s);
    alert_free(&a);

    /* An empty alert still has every key. */
    memset(&a, 0, sizeof(a));
    s = alert_to_json(&a);
    T_EQ_STR(s,
             "{\"id\":0,\"source\":null,\"source_id\":null,\"time\":\"1970-01-01T00:00:00.000Z\","
             "\"received\":\"1970-01-01T00:00:00.000Z\",\"title\":null,\"category\":null,"
             "\"vendor_severity\":null,\"severity\":\"informational\",\"outcome\":null,"
             "\"class\":\"alert\",\"observables\":[],\"raw\":null}");
    free(s);
}

static void
test_normalized_to_json(void)
{
    struct alert a;
    char *err = NULL, *s;
    cJSON *back = NULL;

    T_REQUIRE(norm("{\"source\":\"entra.signin\",\"source_id\":42,\"severity\":2,"
                   "\"observables\":[{\"type\":\"user\",\"value\":\"jiro.tanaka@example.jp\"}]}",
                   NULL, &a, &err) == 0);
    s = alert_to_json(&a);
    T_REQUIRE(json_parse_strict(s, strlen(s), JSON_MAX_DEPTH, &back, &err) == 0);
    T_EQ_STR(json_get_string(back, "source_id"), "42");
    T_EQ_STR(json_get_string(back, "severity"), "medium");
    T_EQ_STR(json_get_string(json_get(back, "raw"), "source"), "entra.signin");
    T_EQ_STR(json_get_string(back, "time"), "2024-05-14T01:33:05.000Z");
    cJSON_Delete(back);
    free(s);
    alert_free(&a);
}

TEST_LIST = {
    { "minimal_defaults", test_minimal_defaults },
    { "full", test_full },
    { "source", test_source },
    { "source_id", test_source_id },
    { "source_id_cap_and_dedup", test_source_id_cap_and_dedup },
    { "time", test_time },
    { "title_category", test_title_category },
    { "severity", test_severity },
    { "outcome", test_outcome },
    { "observables", test_observables },
    { "not_object", test_not_object },
    { "azure_record", test_azure_record },
    { "vendor_source_member", test_vendor_source_member },
    { "registered_normalizers", test_registered_normalizers },
    { "names", test_names },
    { "alert_to_json", test_alert_to_json },
    { "normalized_to_json", test_normalized_to_json },
    { NULL, NULL },
};
