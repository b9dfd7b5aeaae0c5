/* fuzz_http_head.c: feeds arbitrary bytes to the HTTP request-head parser and checks what
 * a successful parse promises (length within the input, an origin-form target, framing
 * that is never both chunked and sized, every line of the head ended by CRLF: a bare LF
 * is never accepted). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parse with one cap and check the result; aborts (a crash the fuzzer reports) when a
 * promise is broken. */
static void
parse_once(const char *buf, size_t size, size_t max)
{
    struct http_head h;
    char *err = NULL;
    int r = http_parse_head(buf, size, max, &h, &err);

    if (r > 0) {
        if ((size_t)r > size || (max > 0 && (size_t)r > max) || h.target == NULL ||
            h.target[0] != '/' || h.method[0] == '\0' || (h.minor != 0 && h.minor != 1) ||
            (h.chunked && h.content_length >= 0) || err != NULL) {
            abort();
        }
        for (int i = 0; i < r; i++) {
            if (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r')) {
                abort();
            }
        }
        for (size_t i = 0; i < h.nheaders; i++) {
            if (h.names[i][0] == '\0' || strchr(h.values[i], '\n') != NULL) {
                abort();
            }
        }
    } else if ((r == -1) != (err != NULL) || h.target != NULL || h.nheaders != 0) {
        abort();
    }
    http_head_free(&h);
    free(err);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;

    parse_once(buf, size, 16384);
    /* A tight cap exercises the too-large paths on the same input. */
    parse_once(buf, size, size / 2 + 1);
    return 0;
}
