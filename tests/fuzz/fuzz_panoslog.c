/* fuzz_panoslog.c: the PAN-OS CSV parser and normalizer on arbitrary records. A record is
 * refused with a reason or normalized into an alert whose every text is valid UTF-8 and
 * whose JSON form is strictly valid JSON. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/alert.h"
#include "engine/json.h"
#include "engine/panoslog.h"
#include "engine/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_utf8(const char *s, const char *what)
{
    size_t n = s != NULL ? strlen(s) : 0;

    for (size_t i = 0; i < n;) {
        size_t k = util_utf8_char(s + i, n - i);

        if (k == 0) {
            fprintf(stderr, "fuzz_panoslog: %s is not UTF-8\n", what);
            abort();
        }
        i += k;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct panoslog_in in;
    struct alert a;
    char *err = NULL;
    int is_alert = -1;

    memset(&in, 0, sizeof(in));
    in.csv = (const char *)data;
    in.len = size;
    in.received_ms = 1715650385000LL;
    in.utc_offset_min = size % 2 ? 540 : -300;
    if (panoslog_normalize(&in, &a, &is_alert, &err) == -1) {
        if (err == NULL || a.source != NULL || a.raw != NULL) {
            fprintf(stderr, "fuzz_panoslog: bad failure state\n");
            abort();
        }
        free(err);
        return 0;
    }
    if (a.source == NULL || a.source_id == NULL || a.title == NULL || a.outcome == NULL ||
        a.raw == NULL || (is_alert != 0 && is_alert != 1) || outcome_valid(a.outcome) == -1) {
        fprintf(stderr, "fuzz_panoslog: accepted record misses a field\n");
        abort();
    }
    check_utf8(a.title, "title");
    check_utf8(a.category, "category");
    for (size_t i = 0; i < a.nobs; i++) {
        check_utf8(a.obs[i].value, "an observable");
        if (observable_type_valid(a.obs[i].type) == -1) {
            abort();
        }
    }
    {
        char *s = alert_to_json(&a);
        cJSON *back = NULL;

        if (json_parse_strict(s, strlen(s), JSON_MAX_DEPTH + 2, &back, &err) == -1) {
            fprintf(stderr, "fuzz_panoslog: alert JSON rejected: %s\n", err);
            abort();
        }
        cJSON_Delete(back);
        free(s);
    }
    alert_free(&a);
    return 0;
}
