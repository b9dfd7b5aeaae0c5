/* fuzz_contacts.c: the check of a contact chain saved in the portal
 * (api_settings_chain) on arbitrary bytes. What it accepts must be a JSON array of 1 to
 * 20 contacts, each with a name without control characters, a wait of 1 s to 1 day and
 * a mail address or a webhook; checked again it must come out the same. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/api_settings.h"
#include "engine/json.h"
#include "engine/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_contacts: %s: %s\n", what, detail != NULL ? detail : "");
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *out = NULL, *again = NULL, *err = NULL, *wrapped;
    cJSON *arr = NULL, *k;

    if (api_settings_chain((const char *)data, size, &out, &err) == -1) {
        if (err == NULL) {
            fuzz_die("refused without a reason", NULL);
        }
        free(err);
        return 0;
    }
    if (json_parse_strict(out, strlen(out), 8, &arr, &err) == -1 || !cJSON_IsArray(arr) ||
        cJSON_GetArraySize(arr) < 1 || cJSON_GetArraySize(arr) > 20) {
        fuzz_die("accepted chain is not an array of 1 to 20", out);
    }
    cJSON_ArrayForEach(k, arr)
    {
        const char *name = json_get_string(k, "name");
        const cJSON *wait = cJSON_GetObjectItemCaseSensitive(k, "wait");
        const cJSON *hooks = cJSON_GetObjectItemCaseSensitive(k, "webhooks");

        if (name == NULL || name[0] == '\0' || !cJSON_IsNumber(wait) || wait->valuedouble < 1 ||
            wait->valuedouble > 86400 || !cJSON_IsArray(hooks)) {
            fuzz_die("accepted contact lacks a name, a wait or its webhooks", out);
        }
        for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
            if (*p < 0x20 || *p == 0x7f) {
                fuzz_die("a control character in a name", out);
            }
        }
        if (json_get_string(k, "email") == NULL && cJSON_GetArraySize(hooks) == 0) {
            fuzz_die("a contact nobody can reach", out);
        }
    }
    wrapped = xasprintf("{\"contacts\":%s}", out);
    if (api_settings_chain(wrapped, strlen(wrapped), &again, &err) == -1 ||
        strcmp(again, out) != 0) {
        fuzz_die("not stable when checked again", err != NULL ? err : again);
    }
    free(wrapped);
    free(again);
    free(out);
    cJSON_Delete(arr);
    return 0;
}
