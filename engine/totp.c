/* totp.c: TOTP and HOTP codes, base32 secrets, otpauth:// URIs. */
#include "engine/totp.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

static const char b32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

int64_t
totp_step(int64_t unix_s)
{
    return unix_s >= 0 ? unix_s / TOTP_PERIOD : -((-unix_s + TOTP_PERIOD - 1) / TOTP_PERIOD);
}

/* RFC 4226 section 5.3: HMAC of the big-endian counter, dynamic truncation, modulo. */
uint32_t
totp_hotp(const unsigned char *key, size_t keylen, enum totp_algo algo, uint64_t counter,
          int digits)
{
    const EVP_MD *md = algo == TOTP_SHA256   ? EVP_sha256()
                       : algo == TOTP_SHA512 ? EVP_sha512()
                                             : EVP_sha1();
    unsigned char msg[8], mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    uint32_t bin, mod = 1;
    int off;

    for (int i = 7; i >= 0; i--) {
        msg[i] = (unsigned char)(counter & 0xff);
        counter >>= 8;
    }
    if (HMAC(md, key, (int)keylen, msg, sizeof(msg), mac, &maclen) == NULL || maclen < 20) {
        return 0;
    }
    off = mac[maclen - 1] & 0x0f;
    bin = ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
          ((uint32_t)mac[off + 2] << 8) | (uint32_t)mac[off + 3];
    for (int i = 0; i < digits && i < 9; i++) {
        mod *= 10;
    }
    return bin % mod;
}

void
totp_base32_encode(const unsigned char *p, size_t n, char *out, size_t outsz)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;

    if (outsz == 0) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | p[i];
        bits += 8;
        while (bits >= 5 && o + 1 < outsz) {
            out[o++] = b32_alphabet[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0 && o + 1 < outsz) {
        out[o++] = b32_alphabet[(acc << (5 - bits)) & 31];
    }
    out[o] = '\0';
}

int
totp_base32_decode(const char *s, unsigned char *out, size_t outsz, size_t *n)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    int pad = 0;

    for (; *s != '\0'; s++) {
        const char *hit;
        char c = *s;

        if (c == ' ') {
            continue;
        }
        if (c == '=') {
            pad = 1;
            continue;
        }
        if (pad) {
            return -1; /* data after padding */
        }
        if (c >= 'a' && c <= 'z') {
            c = (char)(c - 'a' + 'A');
        }
        hit = strchr(b32_alphabet, c);
        if (hit == NULL || c == '\0') {
            return -1;
        }
        acc = (acc << 5) | (uint32_t)(hit - b32_alphabet);
        bits += 5;
        if (bits >= 8) {
            if (o >= outsz) {
                return -1;
            }
            out[o++] = (unsigned char)((acc >> (bits - 8)) & 0xff);
            bits -= 8;
        }
    }
    *n = o;
    return 0;
}

int
totp_new_secret(char out[TOTP_SECRET_CHARS + 1])
{
    unsigned char rnd[TOTP_SECRET_BYTES];

    if (util_random(rnd, sizeof(rnd)) == -1) {
        return -1;
    }
    totp_base32_encode(rnd, sizeof(rnd), out, TOTP_SECRET_CHARS + 1);
    OPENSSL_cleanse(rnd, sizeof(rnd));
    return 0;
}

/* Every step of the window is computed and compared, so the time taken does not tell
 * which step (if any) matched. */
enum totp_result
totp_check(const char *secret_b32, int64_t now_s, const char *code, int64_t last_step,
           int64_t *step)
{
    unsigned char key[64];
    size_t keylen = 0;
    uint32_t given = 0;
    int64_t cur = totp_step(now_s);
    enum totp_result res = TOTP_WRONG;

    *step = 0;
    if (code == NULL || strlen(code) != TOTP_DIGITS) {
        return TOTP_WRONG;
    }
    for (int i = 0; i < TOTP_DIGITS; i++) {
        if (code[i] < '0' || code[i] > '9') {
            return TOTP_WRONG;
        }
        given = given * 10 + (uint32_t)(code[i] - '0');
    }
    if (totp_base32_decode(secret_b32, key, sizeof(key), &keylen) == -1 || keylen == 0) {
        return TOTP_WRONG;
    }
    for (int64_t s = cur - 1; s <= cur + 1; s++) {
        uint32_t want = totp_hotp(key, keylen, TOTP_SHA1, (uint64_t)s, TOTP_DIGITS);
        int same = CRYPTO_memcmp(&want, &given, sizeof(want)) == 0;

        if (same && s > last_step && res != TOTP_MATCH) {
            res = TOTP_MATCH;
            *step = s;
        } else if (same && res == TOTP_WRONG) {
            res = TOTP_REPLAYED;
        }
    }
    OPENSSL_cleanse(key, sizeof(key));
    return res;
}

/* Percent-encode everything but unreserved characters (RFC 3986). */
static void
uri_escape(struct buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            (void)!buf_append(b, p, 1);
        } else {
            (void)!buf_printf(b, "%%%02X", *p);
        }
    }
}

char *
totp_uri(const char *issuer, const char *account, const char *secret_b32)
{
    struct buf b;

    buf_init(&b, 0);
    (void)!buf_puts(&b, "otpauth://totp/");
    uri_escape(&b, issuer);
    (void)!buf_puts(&b, ":");
    uri_escape(&b, account);
    (void)!buf_puts(&b, "?secret=");
    uri_escape(&b, secret_b32);
    (void)!buf_puts(&b, "&issuer=");
    uri_escape(&b, issuer);
    (void)!buf_printf(&b, "&algorithm=SHA1&digits=%d&period=%d", TOTP_DIGITS, TOTP_PERIOD);
    return buf_take(&b);
}
