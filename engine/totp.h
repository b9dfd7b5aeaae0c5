/* totp.h: one-time passwords: TOTP (RFC 6238) on HOTP (RFC 4226), base32 secrets
 * (RFC 4648) and the otpauth:// URI authenticator apps read from a QR code. Users get
 * HMAC-SHA1, 6 digits and 30-second steps, which every authenticator app supports. */
#ifndef KAGARI_TOTP_H
#define KAGARI_TOTP_H

#include <stddef.h>
#include <stdint.h>

#include "engine/util.h"

#define TOTP_PERIOD 30       /* seconds per step */
#define TOTP_DIGITS 6        /* digits of a user's code */
#define TOTP_SECRET_BYTES 20 /* 160 bits, as RFC 4226 recommends */
#define TOTP_SECRET_CHARS 32 /* its base32 text */

enum totp_algo { TOTP_SHA1, TOTP_SHA256, TOTP_SHA512 };

/* The step of a Unix time: floor(unix_s / TOTP_PERIOD). */
int64_t totp_step(int64_t unix_s);
/* The HOTP value of counter with key: a number below 10^digits (digits 6 to 8). */
uint32_t totp_hotp(const unsigned char *key, size_t keylen, enum totp_algo algo, uint64_t counter,
                   int digits);

/* Base32 (RFC 4648, upper case, no padding written). decode accepts lower case, spaces
 * and trailing '=' padding; -1 on any other character or when out is too small. */
void totp_base32_encode(const unsigned char *p, size_t n, char *out, size_t outsz);
int totp_base32_decode(const char *s, unsigned char *out, size_t outsz, size_t *n) KG_WUR;

/* A new random secret as base32 (TOTP_SECRET_CHARS + 1 bytes). -1 without randomness. */
int totp_new_secret(char out[TOTP_SECRET_CHARS + 1]) KG_WUR;

enum totp_result {
    TOTP_MATCH,    /* the code is right for a step newer than last_step: *step set */
    TOTP_WRONG,    /* not a code of any step in the window (or malformed) */
    TOTP_REPLAYED, /* right, but for a step already used (last_step or older) */
};
/* Check a user's code (TOTP_DIGITS digits, nothing else) against the secret (base32)
 * at Unix time now_s, accepting the current step and one step either side. The
 * comparison takes the same time whatever the code. */
enum totp_result totp_check(const char *secret_b32, int64_t now_s, const char *code,
                            int64_t last_step, int64_t *step);

/* otpauth://totp/<issuer>:<account>?secret=..&issuer=..&algorithm=SHA1&digits=6&period=30
 * with issuer and account percent-encoded. The caller frees it. */
char *totp_uri(const char *issuer, const char *account, const char *secret_b32);

#endif
