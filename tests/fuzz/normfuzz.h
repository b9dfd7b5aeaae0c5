/* normfuzz.h: the body of the normalizer-family fuzz targets (fuzz_<family>.c). The
 * input is strict JSON: a record, an array or an envelope ({"records":[...]} or
 * {"value":[...]}); each record is normalized with its own bytes as raw, by the one
 * family under test, and what comes out is checked: a failure leaves the alert empty
 * with a reason; a success has every field the model requires within its caps, valid
 * observable types and addresses, raw equal to the record's bytes, and serializes to
 * strictly valid JSON. */
#ifndef KAGARI_NORMFUZZ_H
#define KAGARI_NORMFUZZ_H

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/alert.h"
#include "engine/json.h"
#include "engine/normalize.h"
#include "engine/util.h"

static void
normfuzz_die(const char *what)
{
    fprintf(stderr, "normfuzz: %s\n", what);
    abort();
}

static void
normfuzz_check(const struct alert *a, const char *raw, size_t rawlen)
{
    char *s, *err = NULL;
    cJSON *back = NULL;
    unsigned char bin[16];

    if (a->source == NULL || a->source_id == NULL || a->title == NULL || a->outcome == NULL ||
        a->raw == NULL) {
        normfuzz_die("accepted alert misses a field");
    }
    if (strlen(a->source_id) == 0 || strlen(a->source_id) > 256 || strlen(a->title) > 1024 ||
        (a->category != NULL && strlen(a->category) > 256) ||
        (a->vendor_severity != NULL && strlen(a->vendor_severity) > 64)) {
        normfuzz_die("a field over its cap");
    }
    if (outcome_valid(a->outcome) == -1 || a->severity < SEV_INFO || a->severity > SEV_CRITICAL ||
        (a->cls != ALERT_CLASS_ALERT && a->cls != ALERT_CLASS_EVENT)) {
        normfuzz_die("outcome, severity or class out of range");
    }
    if (raw != NULL && (strlen(a->raw) != rawlen || memcmp(a->raw, raw, rawlen) != 0)) {
        normfuzz_die("raw is not the record's bytes");
    }
    for (size_t i = 0; i < a->nobs; i++) {
        const struct observable *o = &a->obs[i];

        if (observable_type_valid(o->type) == -1 || o->value[0] == '\0' ||
            strlen(o->value) > 4096) {
            normfuzz_die("bad observable");
        }
        if (strcmp(o->type, "ip") == 0 && inet_pton(AF_INET, o->value, bin) != 1 &&
            inet_pton(AF_INET6, o->value, bin) != 1) {
            normfuzz_die("an ip observable that is no address");
        }
    }
    s = alert_to_json(a);
    if (json_parse_strict(s, strlen(s), JSON_MAX_DEPTH + 2, &back, &err) == -1) {
        fprintf(stderr, "normfuzz: alert_to_json output rejected: %s\n", err);
        abort();
    }
    cJSON_Delete(back);
    free(s);
}

static void
normfuzz_one(const cJSON *obj, const char *raw, size_t rawlen, const char *hint)
{
    struct alert a;
    const char *src = NULL;
    char *err = NULL;

    if (normalize_record(obj, raw, rawlen, hint, 1715650385000LL, &a, &src, &err) == -1) {
        if (err == NULL || a.source != NULL || a.raw != NULL || a.nobs != 0 || src == NULL) {
            normfuzz_die("bad failure state");
        }
        free(err);
        return;
    }
    normfuzz_check(&a, raw, rawlen);
    alert_free(&a);
}

/* Feed data to the family f (added once). */
static int
normfuzz_run(const struct norm_family *f, const uint8_t *data, size_t size)
{
    char *copy = xmalloc(size ? size : 1);
    cJSON *tree = NULL;
    const cJSON *items, *it;
    const char *key = NULL;
    struct json_span *spans = NULL;
    long n;
    long i = 0;
    char *err = NULL;

    normalize_add_family(f);
    if (size > 0) {
        memcpy(copy, data, size);
    }
    if (json_parse_strict(copy, size, JSON_MAX_DEPTH, &tree, &err) == -1) {
        free(err);
        free(copy);
        return 0;
    }
    if (cJSON_IsArray(json_get(tree, "records"))) {
        key = "records";
    } else if (cJSON_IsArray(json_get(tree, "value"))) {
        key = "value";
    }
    items = key != NULL ? json_get(tree, key) : tree;
    if (cJSON_IsArray(items)) {
        n = json_array_spans(copy, size, key, &spans);
        if (n != cJSON_GetArraySize(items)) {
            free(spans);
            spans = NULL;
        }
        cJSON_ArrayForEach(it, items)
        {
            if (cJSON_IsObject(it)) {
                normfuzz_one(it, spans ? copy + spans[i].off : NULL, spans ? spans[i].len : 0,
                             NULL);
                normfuzz_one(it, NULL, 0, "fuzz.default");
            }
            i++;
        }
        free(spans);
    } else if (cJSON_IsObject(items)) {
        normfuzz_one(items, copy, size, NULL);
    }
    cJSON_Delete(tree);
    free(copy);
    return 0;
}

#endif
