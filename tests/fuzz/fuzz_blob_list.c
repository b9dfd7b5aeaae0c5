/* fuzz_blob_list.c: the blob poller's reader of List Blobs answers (EnumerationResults)
 * on arbitrary bytes: whatever a storage account, or whatever sits in its place, answers.
 * An accepted listing holds at most BLOB_LIST_MAX blobs, each with a name of 1 to 1024
 * bytes and a size that is not negative; a refused one says why and holds nothing. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/blob.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_blob_list: %s: %s\n", what, detail != NULL ? detail : "");
    abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct blob_listing l;
    char *err = NULL;

    if (blob_parse_listing((const char *)data, size, &l, &err) == 0) {
        if (l.n > BLOB_LIST_MAX) {
            fuzz_die("more blobs than the limit", NULL);
        }
        for (size_t i = 0; i < l.n; i++) {
            size_t n = strlen(l.items[i].name);

            if (n == 0 || n > 1024) {
                fuzz_die("a blob name out of bounds", l.items[i].name);
            }
            if (l.items[i].size < 0 || l.items[i].created == NULL || l.items[i].etag == NULL) {
                fuzz_die("a blob without its properties", l.items[i].name);
            }
        }
        if (l.next_marker != NULL && l.next_marker[0] == '\0') {
            fuzz_die("an empty next marker", NULL);
        }
        blob_listing_clear(&l);
    } else {
        if (err == NULL || l.n != 0 || l.items != NULL || l.next_marker != NULL) {
            fuzz_die("a refusal without a reason, or with blobs", err);
        }
        free(err);
    }
    return 0;
}
