/* test_panos_check.c: the panos connector's value checks (addresses, subnets, tags, object
 * names) against hostile input, and its guard list. */
#include "connectors/panos_check.h"

#include <stdlib.h>
#include <string.h>

#include "tests/unit/test.h"

static int
net(const char *s, int cidr, char *out)
{
    return panos_parse_net(s, strlen(s), cidr, out);
}

static void
test_addresses(void)
{
    static const char *const bad[] = {
        "",
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "1.2.3.04",
        "0x7f.0.0.1",
        "1.2.3.4 ",
        " 1.2.3.4",
        "1.2.3.4/33",
        "1.2.3.4/8",
        "1.2.3.0/",
        "/24",
        "1.2.3.0//24",
        "1.2.3.0/+24",
        "1.2.3.0/024x",
        "::1::",
        "2001:db8::/129",
        "2001:db8::1/64",
        "1.2.3.4-1.2.3.5",
        "fw.example.jp",
        "1.2.3.4'",
        "1.2.3.4\"",
        "1.2.3.4<",
        "1.2.3.4]",
        "1.2.3.4,1.2.3.5",
        "1.2.3.4\n",
        "1111111111111111111111111111111111111111111111111111111111111111111",
    };
    char out[PANOS_NET_MAX];

    T_EQ_INT(net("203.0.113.9", 0, out), 0);
    T_EQ_STR(out, "203.0.113.9");
    T_EQ_INT(net("2001:DB8:0:0::1", 0, out), 0);
    T_EQ_STR(out, "2001:db8::1");
    T_EQ_INT(net("198.51.100.0/28", 1, out), 0);
    T_EQ_STR(out, "198.51.100.0/28");
    T_EQ_INT(net("198.51.100.7/32", 1, out), 0);
    T_EQ_STR(out, "198.51.100.7"); /* a /32 is the address */
    T_EQ_INT(net("2001:db8::/32", 1, out), 0);
    T_EQ_STR(out, "2001:db8::/32");
    T_EQ_INT(net("0.0.0.0/0", 1, out), 0);
    T_EQ_INT(net("198.51.100.0/28", 0, out), -1); /* no subnet where one is not allowed */
    T_EQ_INT(panos_parse_net("1.2.3.4\0/8", 10, 1, out), -1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (net(bad[i], 1, out) != -1) {
            fprintf(stderr, "  accepted %s\n", bad[i]);
            test_failed_ = 1;
        }
    }
}

static void
test_tags_and_names(void)
{
    static const char *const bad[] = {
        "",    " a",   "a ",   "a'b",  "a\"b", "a<b", "a>b",      "a]b",   "a[b", "a/b",  "a&b",
        "a;b", "a\tb", "a\nb", "a\\b", "a=b",  "a%b", "\xc3\xa9", "a\x01", "a*b", "a(b)", "a@b",
    };
    char longv[300];

    T_ASSERT(panos_valid_tag("kagari-block", 12));
    T_ASSERT(panos_valid_tag("watch list", 10));
    T_ASSERT(panos_valid_tag("-x_y.z", 6));
    T_ASSERT(panos_valid_name("kagari-203.0.113.9", 18));
    T_ASSERT(!panos_valid_name("-x", 2)); /* names start with a letter or digit */
    T_ASSERT(!panos_valid_tag("a\0b", 3));
    T_ASSERT(!panos_valid_name("a\0b", 3));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        T_ASSERT(!panos_valid_tag(bad[i], strlen(bad[i])));
        T_ASSERT(!panos_valid_name(bad[i], strlen(bad[i])));
    }
    memset(longv, 'a', sizeof(longv));
    T_ASSERT(panos_valid_tag(longv, 127));
    T_ASSERT(!panos_valid_tag(longv, 128));
    T_ASSERT(panos_valid_name(longv, 63));
    T_ASSERT(!panos_valid_name(longv, 64));
}

static void
test_guard(void)
{
    char *err = NULL;
    struct panos_guard *g =
        panos_guard_new("10.0.0.0/8, 192.0.2.53\n2001:db8::/32 127.0.0.1", &err);

    T_REQUIRE(g != NULL);
    T_EQ_STR(panos_guard_match(g, "10.1.2.3"), "10.0.0.0/8");
    T_EQ_STR(panos_guard_match(g, "10.0.0.0/16"), "10.0.0.0/8");
    T_EQ_STR(panos_guard_match(g, "8.0.0.0/6"), "10.0.0.0/8"); /* a wider block covers it */
    T_EQ_STR(panos_guard_match(g, "192.0.2.53"), "192.0.2.53");
    T_EQ_STR(panos_guard_match(g, "192.0.2.0/24"), "192.0.2.53");
    T_ASSERT(panos_guard_match(g, "192.0.2.54") == NULL);
    T_EQ_STR(panos_guard_match(g, "2001:db8::1"), "2001:db8::/32");
    T_ASSERT(panos_guard_match(g, "2001:db9::1") == NULL);
    T_ASSERT(panos_guard_match(g, "11.0.0.1") == NULL);
    T_EQ_STR(panos_guard_match(g, "0.0.0.0/0"), "10.0.0.0/8");
    panos_guard_free(g);
    T_ASSERT(panos_guard_new("10.0.0.0/8, nope", &err) == NULL);
    T_CONTAINS(err, "nope");
    free(err);
    g = panos_guard_new(NULL, &err);
    T_REQUIRE(g != NULL);
    T_ASSERT(panos_guard_match(g, "10.1.2.3") == NULL);
    panos_guard_free(g);
    panos_guard_free(NULL);
}

TEST_LIST = {
    { "addresses", test_addresses },
    { "tags_and_names", test_tags_and_names },
    { "guard", test_guard },
    { NULL, NULL },
};
