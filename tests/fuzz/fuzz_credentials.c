/* fuzz_credentials.c: the parsers the people's API runs on what a client sends before it
 * is authenticated: CIDR blocks and addresses (allow-lists, X-Forwarded-For), the Cookie
 * header, base32 secrets and TOTP codes. Checks what each promises: a parsed block has a
 * prefix within its family and contains its own network address; a cookie value is
 * NUL-terminated inside its buffer and free of ';'; a code of the wrong shape never
 * matches. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/auth.h"
#include "engine/cidr.h"
#include "engine/totp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    struct cidr c, a;
    char *err = NULL;
    char val[48];
    unsigned char raw[64];
    size_t n = 0;
    int64_t step = 0;

    memcpy(s, data, size);
    s[size] = '\0';
    if (cidr_parse(s, &c, &err) == 0) {
        if (err != NULL || c.bits < 0 || c.bits > (c.v6 ? 128 : 32)) {
            abort();
        }
    } else if (err == NULL) {
        abort();
    }
    free(err);
    if (cidr_parse_addr(s, &a) == 0) {
        struct cidr all = a;

        all.bits = 0;
        if (!cidr_contains(&all, s) || !cidr_contains(&a, s)) {
            abort();
        }
    }
    if (auth_cookie(s, "__Host-kagari_session", val, sizeof(val))) {
        if (strlen(val) >= sizeof(val) || strchr(val, ';') != NULL || val[0] == '\0') {
            abort();
        }
    }
    if (totp_base32_decode(s, raw, sizeof(raw), &n) == 0 && n > sizeof(raw)) {
        abort();
    }
    if (strlen(s) != TOTP_DIGITS || strspn(s, "0123456789") != TOTP_DIGITS) {
        if (totp_check("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", 59, s, 0, &step) != TOTP_WRONG) {
            abort();
        }
    }
    (void)auth_equal(s, "0123456789abcdef");
    free(s);
    return 0;
}
