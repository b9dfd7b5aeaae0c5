/* fuzz_normalize.c: strict parse, then normalize_alert on the object, on each element of
 * an array, or on each record of an Azure {"records":[...]} envelope, with and without a
 * default source. Accepted alerts must serialize to strictly valid JSON. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/alert.h"
#include "engine/json.h"
#include "engine/normalize.h"
#include "engine/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_one(const cJSON *obj, const char *default_source)
{
    struct alert a;
    char *err = NULL;

    if (normalize_alert(obj, default_source, 1715650385000LL, &a, &err) == -1) {
        if (err == NULL || a.source != NULL || a.raw != NULL) {
            fprintf(stderr, "fuzz_normalize: bad failure state\n");
            abort();
        }
        free(err);
        return;
    }
    {
        char *s = alert_to_json(&a);
        cJSON *back = NULL;

        if (a.source == NULL || a.source_id == NULL || a.title == NULL || a.outcome == NULL ||
            a.raw == NULL) {
            fprintf(stderr, "fuzz_normalize: accepted alert misses a field\n");
            abort();
        }
        if (json_parse_strict(s, strlen(s), JSON_MAX_DEPTH + 2, &back, &err) == -1) {
            fprintf(stderr, "fuzz_normalize: alert_to_json output rejected: %s\n", err);
            abort();
        }
        cJSON_Delete(back);
        free(s);
    }
    alert_free(&a);
}

static void
fuzz_each(const cJSON *obj)
{
    fuzz_one(obj, NULL);
    fuzz_one(obj, "fuzz.default");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = xmalloc(size ? size : 1);
    cJSON *tree = NULL, *records;
    const cJSON *it;
    char *err = NULL;

    if (size > 0) {
        memcpy(copy, data, size);
    }
    if (json_parse_strict(copy, size, JSON_MAX_DEPTH, &tree, &err) == -1) {
        free(err);
        free(copy);
        return 0;
    }
    records = json_get(tree, "records");
    if (cJSON_IsArray(records)) {
        cJSON_ArrayForEach(it, records)
        {
            fuzz_each(it);
        }
    } else if (cJSON_IsArray(tree)) {
        cJSON_ArrayForEach(it, tree)
        {
            fuzz_each(it);
        }
    } else {
        fuzz_each(tree);
    }
    cJSON_Delete(tree);
    free(copy);
    return 0;
}
