/* auth.c: passwords, tokens, recovery codes, lockout delays, cookies. */
#include "engine/auth.h"

#include <argon2.h>
#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/totp.h"

#define AUTH_SALT_BYTES 16
#define AUTH_HASH_BYTES 32

int
auth_password_hash(const char *pw, const struct auth_cost *cost, char **out, char **errp)
{
    struct auth_cost def = { 65536, 3, 1 };
    unsigned char salt[AUTH_SALT_BYTES];
    size_t len;
    char *enc;
    int rc;

    *out = NULL;
    if (cost == NULL) {
        cost = &def;
    }
    if (strlen(pw) > AUTH_PASSWORD_MAX) {
        return kg_err(errp, "password longer than %d bytes", AUTH_PASSWORD_MAX);
    }
    if (util_random(salt, sizeof(salt)) == -1) {
        return kg_err(errp, "no randomness for a salt");
    }
    len = argon2_encodedlen(cost->passes, cost->memory_kib, cost->lanes, AUTH_SALT_BYTES,
                            AUTH_HASH_BYTES, Argon2_id);
    enc = xmalloc(len);
    rc = argon2id_hash_encoded(cost->passes, cost->memory_kib, cost->lanes, pw, strlen(pw), salt,
                               sizeof(salt), AUTH_HASH_BYTES, enc, len);
    if (rc != ARGON2_OK) {
        free(enc);
        return kg_err(errp, "argon2id: %s", argon2_error_message(rc));
    }
    *out = enc;
    return 0;
}

int
auth_password_verify(const char *encoded, const char *pw)
{
    int rc;

    if (encoded == NULL || strncmp(encoded, "$argon2id$", 10) != 0) {
        return -1;
    }
    if (pw == NULL || strlen(pw) > AUTH_PASSWORD_MAX) {
        return 0;
    }
    rc = argon2id_verify(encoded, pw, strlen(pw));
    if (rc == ARGON2_OK) {
        return 1;
    }
    return rc == ARGON2_VERIFY_MISMATCH ? 0 : -1;
}

int
auth_password_check(const char *pw, const char *user, char **errp)
{
    size_t n = pw ? strlen(pw) : 0;

    if (n < AUTH_PASSWORD_MIN || n > AUTH_PASSWORD_MAX) {
        return kg_err(errp, "a password needs %d to %d characters", AUTH_PASSWORD_MIN,
                      AUTH_PASSWORD_MAX);
    }
    if (user != NULL && strcasecmp(pw, user) == 0) {
        return kg_err(errp, "the password must not be the user name");
    }
    return 0;
}

char *
auth_new_token(const char *prefix)
{
    unsigned char rnd[32];
    char hex[65];

    if (util_random(rnd, sizeof(rnd)) == -1) {
        return NULL;
    }
    util_hex(rnd, sizeof(rnd), hex);
    OPENSSL_cleanse(rnd, sizeof(rnd));
    return xasprintf("%s%s", prefix, hex);
}

void
auth_digest(const char *token, char out[65])
{
    util_sha256_hex(token, strlen(token), out);
}

int
auth_recovery_code(char out[12])
{
    unsigned char rnd[7];
    char b32[16];

    if (util_random(rnd, sizeof(rnd)) == -1) {
        return -1;
    }
    totp_base32_encode(rnd, sizeof(rnd), b32, sizeof(b32)); /* 12 characters, 10 used */
    for (int i = 0; i < 10; i++) {
        b32[i] = (char)tolower((unsigned char)b32[i]);
    }
    snprintf(out, 12, "%.5s-%.5s", b32, b32 + 5);
    return 0;
}

void
auth_recovery_digest(const char *code, char out[65])
{
    char norm[64];
    size_t n = 0;

    for (const char *p = code; *p != '\0' && n + 1 < sizeof(norm); p++) {
        if (*p != '-' && *p != ' ') {
            norm[n++] = (char)tolower((unsigned char)*p);
        }
    }
    norm[n] = '\0';
    util_sha256_hex(norm, n, out);
}

int64_t
auth_lock_delay(int failures)
{
    int64_t d = AUTH_LOCK_FIRST_MS;

    if (failures <= AUTH_FREE_FAILURES) {
        return 0;
    }
    for (int i = AUTH_FREE_FAILURES + 1; i < failures && d < AUTH_LOCK_MAX_MS; i++) {
        d *= 2;
    }
    return d < AUTH_LOCK_MAX_MS ? d : AUTH_LOCK_MAX_MS;
}

int64_t
auth_locked_for(int64_t locked_until, int64_t now_ms)
{
    return locked_until > now_ms ? locked_until - now_ms : 0;
}

/* Cookie: a=1; b=2 (RFC 6265 section 5.4): pairs split on ';', names compared exactly.
 * A name given twice is taken at its first occurrence, as browsers send the most
 * specific cookie first. */
int
auth_cookie(const char *header, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    const char *p = header;

    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, ';');
        size_t len;

        while (*p == ' ') {
            p++;
        }
        len = end ? (size_t)(end - p) : strlen(p);
        if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            size_t vl = len - nl - 1;

            while (vl > 0 && p[nl + 1 + vl - 1] == ' ') {
                vl--;
            }
            if (vl + 1 > n || vl == 0) {
                return 0;
            }
            memcpy(out, p + nl + 1, vl);
            out[vl] = '\0';
            return 1;
        }
        p = end ? end + 1 : NULL;
    }
    return 0;
}

int
auth_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    if (la != lb) {
        return 0;
    }
    return CRYPTO_memcmp(a, b, la) == 0;
}
