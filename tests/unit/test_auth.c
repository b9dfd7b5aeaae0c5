/* test_auth.c: Argon2id hashing and verification, tokens, recovery codes, the lockout
 * delays on a test clock, cookies and constant-time comparison. */
#include "engine/auth.h"

#include <stdlib.h>
#include <string.h>

#include "tests/unit/test.h"

static const struct auth_cost cheap = { 1024, 1, 1 };

static void
test_password(void)
{
    char *h = NULL, *h2 = NULL, *err = NULL;
    char long_pw[AUTH_PASSWORD_MAX + 2];

    T_REQUIRE(auth_password_hash("correct horse battery", &cheap, &h, &err) == 0);
    T_ASSERT(strncmp(h, "$argon2id$v=19$m=1024,t=1,p=1$", 30) == 0);
    T_EQ_INT(auth_password_verify(h, "correct horse battery"), 1);
    T_EQ_INT(auth_password_verify(h, "correct horse batterY"), 0);
    T_EQ_INT(auth_password_verify(h, ""), 0);
    /* a fresh salt each time */
    T_REQUIRE(auth_password_hash("correct horse battery", &cheap, &h2, &err) == 0);
    T_ASSERT(strcmp(h, h2) != 0);
    T_EQ_INT(auth_password_verify(h2, "correct horse battery"), 1);
    /* not an Argon2id hash: an error, never a match */
    T_EQ_INT(auth_password_verify("$argon2i$v=19$m=1024,t=1,p=1$AAAA$AAAA", "x"), -1);
    T_EQ_INT(auth_password_verify("plain", "plain"), -1);
    T_EQ_INT(auth_password_verify("$argon2id$garbage", "x"), -1);
    T_EQ_INT(auth_password_verify(NULL, "x"), -1);
    /* over-long input is refused before any hashing */
    memset(long_pw, 'a', sizeof(long_pw) - 1);
    long_pw[sizeof(long_pw) - 1] = '\0';
    T_EQ_INT(auth_password_verify(h, long_pw), 0);
    free(h2);
    T_EQ_INT(auth_password_hash(long_pw, &cheap, &h2, &err), -1);
    free(err);
    err = NULL;
    free(h);
    /* a failed call leaves no hash behind */
    T_ASSERT(h2 == NULL);
    T_EQ_INT(auth_password_check("short", "ana", &err), -1);
    free(err);
    err = NULL;
    T_EQ_INT(auth_password_check("analyst-ANALYST", "analyst-analyst", &err), -1);
    free(err);
    err = NULL;
    T_EQ_INT(auth_password_check("a long enough one", "ana", &err), 0);
}

static void
test_tokens(void)
{
    char *a = auth_new_token("kgs_"), *b = auth_new_token("kgs_");
    char da[65], db[65];

    T_REQUIRE(a != NULL && b != NULL);
    T_EQ_INT(strlen(a), 4 + 64);
    T_ASSERT(strcmp(a, b) != 0);
    auth_digest(a, da);
    auth_digest(b, db);
    T_EQ_INT(strlen(da), 64);
    T_ASSERT(strcmp(da, db) != 0);
    T_ASSERT(strstr(da, a + 4) == NULL);
    free(a);
    free(b);
}

static void
test_recovery_codes(void)
{
    char c[12], d1[65], d2[65], d3[65];
    char upper[16];

    T_REQUIRE(auth_recovery_code(c) == 0);
    T_EQ_INT(strlen(c), 11);
    T_EQ_INT(c[5], '-');
    auth_recovery_digest(c, d1);
    for (int i = 0; i < 12; i++) {
        upper[i] = (char)(c[i] >= 'a' && c[i] <= 'z' ? c[i] - 32 : c[i]);
    }
    upper[5] = ' ';
    auth_recovery_digest(upper, d2);
    T_EQ_STR(d1, d2);
    auth_recovery_digest("abcde-fghij", d3);
    T_ASSERT(strcmp(d1, d3) != 0 || strcmp(c, "abcde-fghij") == 0);
}

/* The growing delay, driven by a test clock: 4 free failures, then 30 s, 60 s, 120 s...
 * capped at one hour; a lock ends exactly when it says. */
static void
test_lockout_clock(void)
{
    int64_t now = 1700000000000;
    int64_t locked_until = 0;
    int failures = 0;

    for (int i = 1; i <= 4; i++) {
        T_EQ_INT(auth_lock_delay(i), 0);
    }
    T_EQ_INT(auth_lock_delay(5), 30000);
    T_EQ_INT(auth_lock_delay(6), 60000);
    T_EQ_INT(auth_lock_delay(7), 120000);
    T_EQ_INT(auth_lock_delay(10), 960000);
    T_EQ_INT(auth_lock_delay(11), 1920000);
    T_EQ_INT(auth_lock_delay(12), 3600000);
    T_EQ_INT(auth_lock_delay(1000), 3600000);
    T_EQ_INT(auth_lock_delay(2147483647), 3600000);

    /* five failures in a row at the same instant: the fifth locks for 30 s */
    for (int i = 0; i < 5; i++) {
        T_EQ_INT(auth_locked_for(locked_until, now), 0);
        failures++;
        if (auth_lock_delay(failures) > 0) {
            locked_until = now + auth_lock_delay(failures);
        }
    }
    T_EQ_INT(auth_locked_for(locked_until, now), 30000);
    T_EQ_INT(auth_locked_for(locked_until, now + 29999), 1);
    T_EQ_INT(auth_locked_for(locked_until, now + 30000), 0);
    /* the next failure after the lock doubles it */
    now += 30000;
    failures++;
    locked_until = now + auth_lock_delay(failures);
    T_EQ_INT(auth_locked_for(locked_until, now), 60000);
}

static void
test_cookie(void)
{
    char v[80];

    T_EQ_INT(auth_cookie("a=1; __Host-kagari=abc; b=2", "__Host-kagari", v, sizeof(v)), 1);
    T_EQ_STR(v, "abc");
    T_EQ_INT(auth_cookie("__Host-kagari=first;__Host-kagari=second", "__Host-kagari", v, sizeof(v)),
             1);
    T_EQ_STR(v, "first");
    /* a name that only starts or ends like ours is another cookie */
    T_EQ_INT(auth_cookie("x__Host-kagari=1; __Host-kagarix=2", "__Host-kagari", v, sizeof(v)), 0);
    T_EQ_INT(auth_cookie("__Host-kagari=", "__Host-kagari", v, sizeof(v)), 0);
    T_EQ_INT(auth_cookie("", "__Host-kagari", v, sizeof(v)), 0);
    T_EQ_INT(auth_cookie("__Host-kagari=0123456789", "__Host-kagari", v, 5), 0);
    T_EQ_INT(auth_cookie(";;; ;", "__Host-kagari", v, sizeof(v)), 0);
}

static void
test_equal(void)
{
    T_EQ_INT(auth_equal("abc", "abc"), 1);
    T_EQ_INT(auth_equal("abc", "abd"), 0);
    T_EQ_INT(auth_equal("abc", "ab"), 0);
    T_EQ_INT(auth_equal("", ""), 1);
    T_EQ_INT(auth_equal("", "a"), 0);
}

TEST_LIST = {
    { "password", test_password },
    { "tokens", test_tokens },
    { "recovery_codes", test_recovery_codes },
    { "lockout_clock", test_lockout_clock },
    { "cookie", test_cookie },
    { "equal", test_equal },
    { NULL, NULL },
};
