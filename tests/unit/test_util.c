/* test_util.c: buffers, time parsing and formatting, size and duration parsing. */
#include "engine/util.h"

#include <stdlib.h>

#include "tests/unit/test.h"

static void
test_buf_cap(void)
{
    struct buf b;

    buf_init(&b, 8);
    T_EQ_INT(buf_puts(&b, "12345"), 0);
    T_EQ_INT(buf_puts(&b, "678"), 0);
    T_EQ_INT(buf_puts(&b, "9"), -1);
    T_EQ_STR(b.data, "12345678");
    buf_free(&b);
}

static void
test_buf_json_string(void)
{
    struct buf b;

    buf_init(&b, 0);
    T_EQ_INT(buf_json_string(&b, "a\"b\\c\n\x01", 7), 0);
    T_EQ_STR(b.data, "\"a\\\"b\\\\c\\n\\u0001\"");
    buf_free(&b);
}

static void
test_time_roundtrip(void)
{
    int64_t ms = 0;
    char out[32];

    T_EQ_INT(util_parse_time("2024-05-14T01:33:05Z", &ms), 0);
    T_EQ_INT(ms, 1715650385000LL);
    T_EQ_INT(util_parse_time("2024-05-14T10:33:05.1234+09:00", &ms), 0);
    T_EQ_INT(ms, 1715650385123LL);
    util_fmt_time(ms, out);
    T_EQ_STR(out, "2024-05-14T01:33:05.123Z");
    T_EQ_INT(util_parse_time("2024-05-14 01:33", &ms), -1);
    T_EQ_INT(util_parse_time("2024-13-14T01:33:05Z", &ms), -1);
    T_EQ_INT(util_parse_time("2024-05-14T01:33:05Zjunk", &ms), -1);
}

static void
test_size_duration(void)
{
    size_t sz = 0;
    double d = 0;

    T_EQ_INT(util_parse_size("4MiB", &sz), 0);
    T_EQ_INT(sz, 4 * 1024 * 1024);
    T_EQ_INT(util_parse_size("512k", &sz), 0);
    T_EQ_INT(sz, 512 * 1024);
    T_EQ_INT(util_parse_size("lots", &sz), -1);
    T_EQ_INT(util_parse_duration("15m", &d), 0);
    T_ASSERT(d == 900);
    T_EQ_INT(util_parse_duration("500ms", &d), 0);
    T_ASSERT(d == 0.5);
    T_EQ_INT(util_parse_duration("-1s", &d), -1);
    T_EQ_INT(util_parse_duration("1y", &d), -1);
}

static void
test_sha256(void)
{
    char hex[65];

    util_sha256_hex("abc", 3, hex);
    T_EQ_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_LIST = {
    { "buf_cap", test_buf_cap },
    { "buf_json_string", test_buf_json_string },
    { "time_roundtrip", test_time_roundtrip },
    { "size_duration", test_size_duration },
    { "sha256", test_sha256 },
    { NULL, NULL },
};
