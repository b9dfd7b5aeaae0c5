/* test_log.c: log_quote escapes everything a terminal or a log reader could take for
 * control, and the JSON line format carries the same text as valid JSON. */
#include "engine/log.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/unit/test.h"

static void
test_quote_classes(void)
{
    T_EQ_STR(log_quote("plain text"), "\"plain text\"");
    T_EQ_STR(log_quote("q\"b\\"), "\"q\\\"b\\\\\"");
    T_EQ_STR(log_quote("cr\rlf\ntab\t"), "\"cr\\rlf\\ntab\\t\"");
    T_EQ_STR(log_quote("esc\x1b[31m"), "\"esc\\x1b[31m\"");
    T_EQ_STR(log_quote("del\x7f"), "\"del\\x7f\"");
    T_EQ_STR(log_quote("c1\xc2\x85\xc2\x9b"), "\"c1\\u0085\\u009b\"");
    T_EQ_STR(log_quote("ls\xe2\x80\xa8ps\xe2\x80\xa9"), "\"ls\\u2028ps\\u2029\"");
    T_EQ_STR(log_quote("bad\xff\xc3("), "\"bad\\xff\\xc3(\"");
    T_EQ_STR(log_quote("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
}

static void
test_quote_long(void)
{
    char in[2000];
    const char *q;
    size_t n;

    memset(in, '\x1b', sizeof(in) - 1);
    in[sizeof(in) - 1] = '\0';
    q = log_quote(in);
    n = strlen(q);
    T_ASSERT(n < 512);
    T_EQ_INT(q[n - 1], '"');
    T_EQ_INT((n - 2) % 4, 0); /* whole \xNN escapes only */
    for (size_t i = 0; i < n; i++) {
        T_ASSERT((unsigned char)q[i] >= 0x20 && (unsigned char)q[i] < 0x7f);
    }
}

/* The JSON line of a log event: captured from stderr through a temporary file. */
static char *
json_line(const char *value)
{
    FILE *f = tmpfile();
    int saved = dup(2);
    char *out = xcalloc(1, 4096);

    fflush(stderr);
    dup2(fileno(f), 2);
    log_set_json(1);
    log_info("test.event v=%s", log_quote(value));
    log_set_json(0);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(f);
    if (fread(out, 1, 4095, f) == 0) {
        out[0] = '\0';
    }
    fclose(f);
    return out;
}

static void
test_json_lines(void)
{
    char *l = json_line("a\x1b\x7f\xc2\x85\xe2\x80\xa8\xff\r\n\"q\" caf\xc3\xa9");

    T_CONTAINS(l, "\"v\":\"a\\u001b\\u007f\\u0085\\u2028\\ufffd\\r\\n\\\"q\\\" caf\xc3\xa9\"");
    for (size_t i = 0; l[i] != '\0'; i++) {
        unsigned char c = (unsigned char)l[i];

        T_ASSERT(c != 0x1b && c != 0x7f && c != 0xff && c != '\r');
    }
    free(l);
}

TEST_LIST = {
    { "quote_classes", test_quote_classes },
    { "quote_long", test_quote_long },
    { "json_lines", test_json_lines },
    { NULL, NULL },
};
