/* test_cidr.c: CIDR parsing and matching, IPv4 and IPv6, hostile text. */
#include "engine/cidr.h"

#include <stdlib.h>

#include "tests/unit/test.h"

static int
in(const char *block, const char *addr)
{
    struct cidr c;
    char *err = NULL;

    if (cidr_parse(block, &c, &err) == -1) {
        free(err);
        return -1;
    }
    return cidr_contains(&c, addr);
}

static void
test_v4(void)
{
    T_EQ_INT(in("192.0.2.0/24", "192.0.2.0"), 1);
    T_EQ_INT(in("192.0.2.0/24", "192.0.2.255"), 1);
    T_EQ_INT(in("192.0.2.0/24", "192.0.3.0"), 0);
    T_EQ_INT(in("192.0.2.0/24", "192.0.1.255"), 0);
    T_EQ_INT(in("10.0.0.0/8", "10.255.1.2"), 1);
    T_EQ_INT(in("172.16.0.0/12", "172.31.255.255"), 1);
    T_EQ_INT(in("172.16.0.0/12", "172.32.0.0"), 0);
    T_EQ_INT(in("127.0.0.1", "127.0.0.1"), 1);
    T_EQ_INT(in("127.0.0.1", "127.0.0.2"), 0);
    T_EQ_INT(in("0.0.0.0/0", "203.0.113.9"), 1);
    T_EQ_INT(in("0.0.0.0/0", "::1"), 0); /* families never mix */
    T_EQ_INT(in("192.0.2.128/25", "192.0.2.127"), 0);
    T_EQ_INT(in("192.0.2.128/25", "192.0.2.128"), 1);
}

static void
test_v6(void)
{
    T_EQ_INT(in("2001:db8::/32", "2001:db8:ffff::1"), 1);
    T_EQ_INT(in("2001:db8::/32", "2001:db9::1"), 0);
    T_EQ_INT(in("::1", "::1"), 1);
    T_EQ_INT(in("::1/128", "::2"), 0);
    T_EQ_INT(in("fe80::/10", "febf::1"), 1);
    T_EQ_INT(in("fe80::/10", "fec0::1"), 0);
    T_EQ_INT(in("::/0", "2001:db8::1"), 1);
    T_EQ_INT(in("::/0", "127.0.0.1"), 0);
    T_EQ_INT(in("2001:db8::/127", "2001:db8::1"), 1);
    T_EQ_INT(in("2001:db8::/127", "2001:db8::2"), 0);
}

/* A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d: they match IPv4 blocks. */
static void
test_v4_mapped(void)
{
    T_EQ_INT(in("127.0.0.0/8", "::ffff:127.0.0.1"), 1);
    T_EQ_INT(in("192.0.2.0/24", "::ffff:192.0.3.1"), 0);
    T_EQ_INT(in("::ffff:192.0.2.1", "192.0.2.1"), 1);
}

static void
test_hostile(void)
{
    static const char *const bad[] = {
        "",
        "/24",
        "192.0.2.1/24", /* bits past the prefix */
        "192.0.2.0/33",
        "192.0.2.0/-1",
        "192.0.2.0/",
        "192.0.2.0/24x",
        "192.0.2.0/ 24",
        "192.0.2",
        "256.0.0.0",
        "192.0.2.0/24/8",
        "2001:db8::/129",
        "2001:db8::1/32",
        "2001:db8:::/32",
        "example.com",
        "::ffff:192.0.2.0/120",
        "1.2.3.4 ",
        "0x7f.0.0.1",
        "012345678901234567890123456789012345678901234567890123456789012345678",
    };
    struct cidr c;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *err = NULL;

        if (cidr_parse(bad[i], &c, &err) != -1) {
            T_FAIL_("accepted \"%s\"", bad[i]);
        }
        T_ASSERT(err != NULL);
        free(err);
    }
    T_EQ_INT(cidr_parse(NULL, &c, NULL), -1);
    /* unparsable peers are in no block, even /0 */
    T_EQ_INT(in("0.0.0.0/0", "not-an-address"), 0);
    T_EQ_INT(in("0.0.0.0/0", ""), 0);
    T_EQ_INT(in("::/0", "1.2.3.4, 5.6.7.8"), 0);
}

TEST_LIST = {
    { "v4", test_v4 },           { "v6", test_v6 }, { "v4_mapped", test_v4_mapped },
    { "hostile", test_hostile }, { NULL, NULL },
};
