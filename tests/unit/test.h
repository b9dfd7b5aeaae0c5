/* test.h: a tiny unit test harness. Each test file defines its tests and one table:
 *
 *     static void test_foo(void) { T_ASSERT(1 + 1 == 2); }
 *     TEST_LIST = { { "foo", test_foo }, { NULL, NULL } };
 *
 * and the harness's main() runs them and ends with "unit <file>: N passed, N failed". */
#ifndef KAGARI_TEST_H
#define KAGARI_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct test_case {
    const char *name;
    void (*fn)(void);
};

extern const struct test_case test_list_[];
#define TEST_LIST const struct test_case test_list_[]

extern int test_failed_;
extern const char *test_file_;

/* Remove a temporary folder and everything in it (errors ignored). */
void test_rm_tree(const char *dir);

#define T_FAIL_(...)                                                                               \
    do {                                                                                           \
        fprintf(stderr, "  FAIL %s:%d: ", __FILE__, __LINE__);                                     \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        test_failed_ = 1;                                                                          \
    } while (0)

/* Assertions record a failure and continue; T_REQUIRE stops the test. */
#define T_ASSERT(c)                                                                                \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            T_FAIL_("%s", #c);                                                                     \
        }                                                                                          \
    } while (0)
#define T_REQUIRE(c)                                                                               \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            T_FAIL_("%s", #c);                                                                     \
            return;                                                                                \
        }                                                                                          \
    } while (0)
#define T_EQ_INT(a, b)                                                                             \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) {                                                                            \
            T_FAIL_("%s == %s (%lld != %lld)", #a, #b, a_, b_);                                    \
        }                                                                                          \
    } while (0)
#define T_EQ_STR(a, b)                                                                             \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (a_ == NULL || b_ == NULL || strcmp(a_, b_) != 0) {                                     \
            T_FAIL_("%s == %s (\"%s\" != \"%s\")", #a, #b, a_ ? a_ : "(null)",                     \
                    b_ ? b_ : "(null)");                                                           \
        }                                                                                          \
    } while (0)
#define T_CONTAINS(hay, needle)                                                                    \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        if (h_ == NULL || strstr(h_, n_) == NULL) {                                                \
            T_FAIL_("\"%s\" contains \"%s\"", h_ ? h_ : "(null)", n_);                             \
        }                                                                                          \
    } while (0)

#endif
