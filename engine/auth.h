/* auth.h: the credentials of people: Argon2id password hashes, random tokens kept as
 * digests (sessions, personal API tokens, recovery codes), the lockout after failed
 * logins, cookies and CSRF tokens. Pure functions of their inputs (the clock is an
 * argument), so each rule is tested on its own; engine/api.c applies them. */
#ifndef KAGARI_AUTH_H
#define KAGARI_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "engine/util.h"

/* Argon2id cost. RFC 9106's second recommended option is 64 MiB and 3 passes. */
struct auth_cost {
    uint32_t memory_kib; /* default 65536 */
    uint32_t passes;     /* default 3 */
    uint32_t lanes;      /* default 1 */
};
#define AUTH_PASSWORD_MIN 12  /* characters (bytes) a new password needs at least */
#define AUTH_PASSWORD_MAX 256 /* longer input is refused before hashing */

/* Hash pw into an Argon2id encoded string ($argon2id$v=19$m=..,t=..,p=..$salt$hash, a
 * fresh 16-byte salt) the caller frees. cost NULL: the defaults. -1 with *errp. */
int auth_password_hash(const char *pw, const struct auth_cost *cost, char **out,
                       char **errp) KG_WUR;
/* 1 when pw matches the encoded hash, 0 when not (or pw is too long), -1 when the hash
 * is not an Argon2id string. Takes as long as the hash's cost says. */
int auth_password_verify(const char *encoded, const char *pw);
/* A new password's rules: AUTH_PASSWORD_MIN..MAX bytes, not the user name. */
int auth_password_check(const char *pw, const char *user, char **errp) KG_WUR;

/* A random token "<prefix><64 hex>" the caller frees, or NULL without randomness;
 * auth_digest writes its SHA-256 hex (what the store keeps). */
char *auth_new_token(const char *prefix);
void auth_digest(const char *token, char out[65]);

/* Recovery codes "xxxxx-xxxxx" (lower-case base32, 50 bits each). The digest of a code
 * ignores case, spaces and dashes, so "ABCDE FGHIJ" finds "abcde-fghij". */
#define AUTH_RECOVERY_CODES 10
int auth_recovery_code(char out[12]) KG_WUR;
void auth_recovery_digest(const char *code, char out[65]);

/* Lockout: the first AUTH_FREE_FAILURES consecutive failures cost nothing; each one
 * after locks the account for a delay that doubles from 30 s up to 1 h. */
#define AUTH_FREE_FAILURES 4
#define AUTH_LOCK_FIRST_MS 30000
#define AUTH_LOCK_MAX_MS 3600000
/* The lock after the failures-th consecutive failure, in ms (0: none). */
int64_t auth_lock_delay(int failures);
/* ms until a login may be tried again (0: now). */
int64_t auth_locked_for(int64_t locked_until, int64_t now_ms);

/* The value of cookie name in a Cookie header, copied into out (NUL-terminated).
 * 1 found, 0 absent or too long for out. */
int auth_cookie(const char *header, const char *name, char *out, size_t n);
/* Constant-time equality of two NUL-terminated secrets (1 equal). */
int auth_equal(const char *a, const char *b);

#endif
