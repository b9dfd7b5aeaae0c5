/* test_totp.c: HOTP/TOTP against the RFC 6238 test vectors, base32, the window, replay. */
#include "engine/totp.h"

#include <stdlib.h>
#include <string.h>

#include "tests/unit/test.h"

/* RFC 6238 appendix B: the seeds and, per time, the 8-digit codes for SHA-1, SHA-256
 * and SHA-512. */
static const char seed1[] = "12345678901234567890";
static const char seed256[] = "12345678901234567890123456789012";
static const char seed512[] = "1234567890123456789012345678901234567890123456789012345678901234";
static const struct {
    int64_t t;
    uint32_t sha1, sha256, sha512;
} vectors[] = {
    { 59, 94287082, 46119246, 90693936 },         { 1111111109, 7081804, 68084774, 25091201 },
    { 1111111111, 14050471, 67062674, 99943326 }, { 1234567890, 89005924, 91819424, 93441116 },
    { 2000000000, 69279037, 90698825, 38618901 }, { 20000000000, 65353130, 77737706, 47863826 },
};

static void
test_rfc6238_vectors(void)
{
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        uint64_t step = (uint64_t)totp_step(vectors[i].t);

        T_EQ_INT(totp_hotp((const unsigned char *)seed1, 20, TOTP_SHA1, step, 8), vectors[i].sha1);
        T_EQ_INT(totp_hotp((const unsigned char *)seed256, 32, TOTP_SHA256, step, 8),
                 vectors[i].sha256);
        T_EQ_INT(totp_hotp((const unsigned char *)seed512, 64, TOTP_SHA512, step, 8),
                 vectors[i].sha512);
    }
}

/* RFC 4226 appendix D: HOTP values for counters 0..9 (6 digits). */
static void
test_rfc4226_vectors(void)
{
    static const uint32_t want[10] = { 755224, 287082, 359152, 969429, 338314,
                                       254676, 287922, 162583, 399871, 520489 };

    for (uint64_t c = 0; c < 10; c++) {
        T_EQ_INT(totp_hotp((const unsigned char *)seed1, 20, TOTP_SHA1, c, 6), want[c]);
    }
}

static void
test_base32(void)
{
    char text[64];
    unsigned char raw[64];
    size_t n = 0;

    totp_base32_encode((const unsigned char *)seed1, 20, text, sizeof(text));
    T_EQ_STR(text, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    T_EQ_INT(totp_base32_decode("gezd gnbv gy3t qojq gezd gnbv gy3t qojq", raw, sizeof(raw), &n),
             0);
    T_EQ_INT(n, 20);
    T_ASSERT(memcmp(raw, seed1, 20) == 0);
    /* RFC 4648 section 10 with padding */
    T_EQ_INT(totp_base32_decode("MZXW6YQ=", raw, sizeof(raw), &n), 0);
    T_EQ_INT(n, 4);
    T_ASSERT(memcmp(raw, "foob", 4) == 0);
    /* hostile input: characters outside the alphabet, data after padding, overflow */
    T_EQ_INT(totp_base32_decode("MZXW1", raw, sizeof(raw), &n), -1);
    T_EQ_INT(totp_base32_decode("MZ=XW", raw, sizeof(raw), &n), -1);
    T_EQ_INT(totp_base32_decode("MZXW\n", raw, sizeof(raw), &n), -1);
    T_EQ_INT(totp_base32_decode("GEZDGNBVGY3TQOJQ", raw, 4, &n), -1);
}

static void
test_window_and_replay(void)
{
    const char *secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    int64_t step = 0;

    /* 287082 is the code of step 1 (t = 30..59) */
    T_EQ_INT(totp_check(secret, 59, "287082", 0, &step), TOTP_MATCH);
    T_EQ_INT(step, 1);
    /* the same code again once step 1 is used: refused as a replay, same step */
    T_EQ_INT(totp_check(secret, 59, "287082", 1, &step), TOTP_REPLAYED);
    T_EQ_INT(totp_check(secret, 45, "287082", 1, &step), TOTP_REPLAYED);
    /* one step either side is accepted, two are not */
    T_EQ_INT(totp_check(secret, 29, "287082", 0, &step), TOTP_MATCH);
    T_EQ_INT(totp_check(secret, 89, "287082", 0, &step), TOTP_MATCH);
    T_EQ_INT(totp_check(secret, 90, "287082", 0, &step), TOTP_WRONG);
    /* a later step's code after an earlier one was used counts */
    T_EQ_INT(totp_check(secret, 60, "359152", 1, &step), TOTP_MATCH);
    T_EQ_INT(step, 2);
    /* malformed codes */
    T_EQ_INT(totp_check(secret, 59, "28708", 0, &step), TOTP_WRONG);
    T_EQ_INT(totp_check(secret, 59, "2870822", 0, &step), TOTP_WRONG);
    T_EQ_INT(totp_check(secret, 59, "28708a", 0, &step), TOTP_WRONG);
    T_EQ_INT(totp_check(secret, 59, " 287082", 0, &step), TOTP_WRONG);
    T_EQ_INT(totp_check(secret, 59, "", 0, &step), TOTP_WRONG);
    T_EQ_INT(totp_check(secret, 59, NULL, 0, &step), TOTP_WRONG);
    T_EQ_INT(totp_check("not base32!", 59, "287082", 0, &step), TOTP_WRONG);
    T_EQ_INT(totp_check(secret, 59, "000000", 0, &step), TOTP_WRONG);
}

static void
test_secret_and_uri(void)
{
    char a[TOTP_SECRET_CHARS + 1], b[TOTP_SECRET_CHARS + 1];
    char *uri;

    T_EQ_INT(totp_new_secret(a), 0);
    T_EQ_INT(totp_new_secret(b), 0);
    T_EQ_INT(strlen(a), TOTP_SECRET_CHARS);
    T_ASSERT(strcmp(a, b) != 0);
    uri = totp_uri("kagari", "ana&lyst@example.jp", "ABC");
    T_EQ_STR(uri, "otpauth://totp/kagari:ana%26lyst%40example.jp?secret=ABC&issuer=kagari"
                  "&algorithm=SHA1&digits=6&period=30");
    free(uri);
}

TEST_LIST = {
    { "rfc6238_vectors", test_rfc6238_vectors },
    { "rfc4226_vectors", test_rfc4226_vectors },
    { "base32", test_base32 },
    { "window_and_replay", test_window_and_replay },
    { "secret_and_uri", test_secret_and_uri },
    { NULL, NULL },
};
