/* test_util.c: buffers, time parsing and formatting, size and duration parsing. */
#include "engine/util.h"

#include <stdlib.h>
#include <string.h>

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

/* The JSON of any bytes is valid UTF-8 with nothing a terminal or a JavaScript parser
 * could take for control: DEL, C1 controls, U+2028/U+2029 escaped, invalid bytes U+FFFD. */
static void
test_buf_json_string_unsafe(void)
{
    struct buf b;

    buf_init(&b, 0);
    T_EQ_INT(buf_json_string(&b, "a\x7f\xc2\x85\xe2\x80\xa8\xe2\x80\xa9\x1b[2J", 14), 0);
    T_EQ_STR(b.data, "\"a\\u007f\\u0085\\u2028\\u2029\\u001b[2J\"");
    buf_reset(&b);
    T_EQ_INT(buf_json_string(&b, "\xff\xc0\xafok\xe2\x80", 7), 0);
    T_EQ_STR(b.data, "\"\\ufffd\\ufffd\\ufffdok\\ufffd\\ufffd\"");
    buf_reset(&b);
    T_EQ_INT(buf_json_string(&b, "caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80", 14), 0);
    T_EQ_STR(b.data, "\"caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80\"");
    buf_free(&b);
}

static void
test_buf_escape_text(void)
{
    struct buf b;
    const char *s = "a\"\\\r\n\t\x1b\x7f\xc2\x9b\xe2\x80\xa8\xe2\x80\xa9\xff\xc3\xa9";

    buf_init(&b, 0);
    T_EQ_INT(buf_escape_text(&b, s, strlen(s), UTIL_ESC_QUOTES), 0);
    T_EQ_STR(b.data, "a\\\"\\\\\\r\\n\\t\\x1b\\x7f\\u009b\\u2028\\u2029\\xff\xc3\xa9");
    buf_reset(&b);
    T_EQ_INT(buf_escape_text(&b, s, strlen(s), UTIL_ESC_KEEP_NL), 0);
    T_EQ_STR(b.data, "a\"\\\\r\n\t\\x1b\\x7f\\u009b\\u2028\\u2029\\xff\xc3\xa9");
    buf_free(&b);
}

static void
test_utf8_clean_and_cut(void)
{
    char *s;
    size_t n = 0;

    s = util_utf8_clean("{\"a\":\"\xff\xc3\xa9\"}", 11, &n);
    T_EQ_STR(s, "{\"a\":\"\xef\xbf\xbd\xc3\xa9\"}");
    T_EQ_INT(n, 13);
    free(s);
    s = util_cut_text("short", 16);
    T_EQ_STR(s, "short");
    free(s);
    s = util_cut_text("abc\xc3\xa9"
                      "def",
                      4); /* would split the e-acute: cut before it */
    T_EQ_STR(s, "abc [... 5 bytes dropped]");
    free(s);
    T_EQ_INT(util_utf8_char("\xed\xa0\x80", 3), 0); /* a surrogate */
    T_EQ_INT(util_utf8_char("\xf0\x9f\x98\x80", 4), 4);
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
    { "buf_json_string_unsafe", test_buf_json_string_unsafe },
    { "buf_escape_text", test_buf_escape_text },
    { "utf8_clean_and_cut", test_utf8_clean_and_cut },
    { "time_roundtrip", test_time_roundtrip },
    { "size_duration", test_size_duration },
    { "sha256", test_sha256 },
    { NULL, NULL },
};
