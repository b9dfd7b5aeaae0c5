/* fuzz_alert_update.c: an alert sent again by its source (a polled Graph alert or risk
 * detection) compared with the stored one. The input is a JSON array of two records:
 * each is normalized as a poller does (the vendor family first); when both are
 * accepted, alert_diff of the two must be strict JSON, empty for one record against
 * itself, name a changed level when the levels differ, and alert_update_significant
 * must follow its rule (a higher level, or an outcome that became "succeeded").
 * Corpus: tests/fuzz/corpus/alert_update/. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/alert.h"
#include "engine/json.h"
#include "engine/norm_defender.h"
#include "engine/norm_entra.h"
#include "engine/normalize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
die(const char *what)
{
    fprintf(stderr, "fuzz_alert_update: %s\n", what);
    abort();
}

static void
check_diff(const struct alert *a, const struct alert *b)
{
    char *d = alert_diff(a, b);
    cJSON *o = NULL;
    int was, is, sig;

    if (d == NULL || json_parse_strict(d, strlen(d), JSON_MAX_DEPTH, &o, NULL) == -1 ||
        !cJSON_IsObject(o)) {
        die("the diff is not a JSON object");
    }
    if (a == b && o->child != NULL) {
        die("a record differs from itself");
    }
    if (a->severity != b->severity && json_get(o, "severity") == NULL) {
        die("a changed level is not in the diff");
    }
    was = a->outcome != NULL && strcmp(a->outcome, "succeeded") == 0;
    is = b->outcome != NULL && strcmp(b->outcome, "succeeded") == 0;
    sig = alert_update_significant(a, b);
    if (sig != (b->severity > a->severity || (is && !was))) {
        die("significance does not follow its rule");
    }
    cJSON_Delete(o);
    free(d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *root = NULL;
    struct alert a[2];
    int ok[2] = { 0, 0 };
    size_t i = 0;
    const cJSON *it;

    normalize_add_family(&norm_defender_family);
    normalize_add_family(&norm_entra_family);
    if (json_parse_strict((const char *)data, size, JSON_MAX_DEPTH, &root, NULL) == -1) {
        return 0;
    }
    if (!cJSON_IsArray(root) || cJSON_GetArraySize(root) != 2) {
        cJSON_Delete(root);
        return 0;
    }
    cJSON_ArrayForEach(it, root)
    {
        char *raw = json_print(it);

        ok[i] = normalize_vendor_record(it, raw, strlen(raw), NULL, 1715650386000LL, &a[i], NULL,
                                        NULL) == 0;
        free(raw);
        i++;
    }
    if (ok[0]) {
        check_diff(&a[0], &a[0]);
    }
    if (ok[0] && ok[1]) {
        check_diff(&a[0], &a[1]);
        check_diff(&a[1], &a[0]);
    }
    for (i = 0; i < 2; i++) {
        if (ok[i]) {
            alert_free(&a[i]);
        }
    }
    cJSON_Delete(root);
    return 0;
}
