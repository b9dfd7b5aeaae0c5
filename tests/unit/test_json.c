/* test_json.c: strict JSON intake: every rejection rule, offsets in messages, helpers. */
#include "engine/json.h"

#include <stdlib.h>
#include <string.h>

#include "engine/util.h"
#include "tests/unit/test.h"

/* The one-pass parser (json_doc_parse) on the same bytes must agree with
 * json_parse_strict: accept the same texts, building them itself (never handing a valid
 * text to the strict parser) into an equal tree, and refuse the rest with the same
 * message. */
static void
doc_agrees(const char *copy, size_t len, int depth, const cJSON *tree, const char *err)
{
    struct json_doc *d = NULL;
    char *derr = NULL;

    if (json_doc_parse(copy, len, depth, &d, &derr) == 0) {
        if (tree == NULL) {
            T_FAIL_("json_doc_parse accepted what json_parse_strict refused (%s)", err);
        } else if (!json_doc_in_arena(d)) {
            T_FAIL_("json_doc_parse handed a valid text to json_parse_strict");
        } else if (!cJSON_Compare(tree, json_doc_root(d), 1)) {
            T_FAIL_("json_doc_parse built another tree");
        } else {
            char *a = json_print(tree), *b = json_print(json_doc_root(d));

            if (strcmp(a, b) != 0) {
                T_FAIL_("trees print differently: %s / %s", a, b);
            }
            free(a);
            free(b);
        }
        json_doc_free(d);
    } else if (tree != NULL) {
        T_FAIL_("json_doc_parse refused what json_parse_strict accepted: %s", derr);
    } else if (err == NULL || derr == NULL || strcmp(err, derr) != 0) {
        T_FAIL_("messages differ: %s / %s", err ? err : "-", derr ? derr : "-");
    }
    free(derr);
}

/* Parse len bytes of s; return the error message (caller frees) or NULL when accepted. */
static char *
reject_n(const char *s, size_t len, int depth)
{
    cJSON *tree = NULL;
    char *err = NULL;
    /* Copy to an exact-size heap block so ASan catches any read past len. */
    char *copy = xmalloc(len ? len : 1);

    memcpy(copy, s, len);
    if (json_parse_strict(copy, len, depth, &tree, &err) == 0) {
        doc_agrees(copy, len, depth, tree, NULL);
        cJSON_Delete(tree);
        free(copy);
        return NULL;
    }
    doc_agrees(copy, len, depth, NULL, err);
    if (tree != NULL) {
        T_FAIL_("tree set on error");
    }
    free(copy);
    return err != NULL ? err : xstrdup("(no message)");
}

static char *
reject(const char *s)
{
    return reject_n(s, strlen(s), JSON_MAX_DEPTH);
}

/* Assert s is rejected with a message containing want. */
#define T_REJECTS(s, want)                                                                         \
    do {                                                                                           \
        char *e_ = reject(s);                                                                      \
        if (e_ == NULL) {                                                                          \
            T_FAIL_("accepted: %s", s);                                                            \
        } else {                                                                                   \
            T_CONTAINS(e_, want);                                                                  \
            free(e_);                                                                              \
        }                                                                                          \
    } while (0)

#define T_ACCEPTS(s)                                                                               \
    do {                                                                                           \
        char *e_ = reject(s);                                                                      \
        if (e_ != NULL) {                                                                          \
            T_FAIL_("rejected %s: %s", s, e_);                                                     \
            free(e_);                                                                              \
        }                                                                                          \
    } while (0)

static void
test_accepts_valid(void)
{
    T_ACCEPTS("{}");
    T_ACCEPTS("[]");
    T_ACCEPTS(" \t\r\n{ \"a\" : [1, -2, 3.5, -0.25e+3, 1E5, 0, -0, true, false, null] } \n");
    T_ACCEPTS("\"top-level string\"");
    T_ACCEPTS("42");
    T_ACCEPTS("null");
    T_ACCEPTS("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uD83D\\uDE00\"");
    T_ACCEPTS("\"\xc3\xa9\xe3\x81\x82\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\"");
    T_ACCEPTS("{\"Source\":1,\"source\":2}"); /* differ in case: not duplicates */
    T_ACCEPTS("[[[[[]]]]]");
}

static void
test_parse_values(void)
{
    cJSON *tree = NULL;
    char *err = NULL;
    const char *s = "{\"name\":\"caf\\u00e9 \\uD83D\\uDE00\",\"n\":-12.5,\"ok\":true}xyz";

    /* Only the first len bytes count: the text need not be NUL-terminated. */
    T_REQUIRE(json_parse_strict(s, strlen(s) - 3, 8, &tree, &err) == 0);
    T_EQ_STR(json_get_string(tree, "name"), "caf\xc3\xa9 \xf0\x9f\x98\x80");
    T_ASSERT(json_get(tree, "n") != NULL && json_get(tree, "n")->valuedouble == -12.5);
    T_ASSERT(cJSON_IsTrue(json_get(tree, "ok")));
    T_ASSERT(json_get_string(tree, "n") == NULL);
    T_ASSERT(json_get(tree, "missing") == NULL);
    cJSON_Delete(tree);
    free(err);
}

static void
test_nul_escape(void)
{
    /* cJSON 1.7 would cut the string at the NUL: "alice\u0000@evil" must never be "alice". */
    T_REJECTS("{\"user\":\"alice\\u0000@evil\"}", "\\u0000 escape not allowed at byte offset 14");
    T_REJECTS("{\"a\\u0000b\":1}", "\\u0000");
}

static void
test_raw_nul(void)
{
    char *e;

    e = reject_n("{\"a\":\"x\0y\"}", 11, 8);
    T_CONTAINS(e, "raw NUL byte in string at byte offset 7");
    free(e);
    e = reject_n("[1,\0]", 5, 8);
    T_CONTAINS(e, "raw NUL byte at byte offset 3");
    free(e);
    e = reject_n("{}\0", 3, 8);
    T_CONTAINS(e, "raw NUL byte");
    free(e);
}

static void
test_control_chars(void)
{
    T_REJECTS("\"a\nb\"", "raw control character 0x0a in string at byte offset 2");
    T_REJECTS("\"a\tb\"", "raw control character 0x09");
    T_REJECTS("\"\x1f\"", "raw control character 0x1f");
    T_ACCEPTS("\"\x7f\""); /* DEL is allowed by RFC 8259 */
}

static void
test_invalid_utf8(void)
{
    T_REJECTS("\"\xc0\xaf\"", "overlong");               /* '/' as 2 bytes */
    T_REJECTS("\"\xe0\x80\xaf\"", "overlong");           /* '/' as 3 bytes */
    T_REJECTS("\"\xf0\x80\x80\xaf\"", "overlong");       /* '/' as 4 bytes */
    T_REJECTS("\"\xed\xa0\x80\"", "surrogate");          /* U+D800 */
    T_REJECTS("\"\xed\xbf\xbf\"", "surrogate");          /* U+DFFF */
    T_REJECTS("\"\xf4\x90\x80\x80\"", "above U+10FFFF"); /* U+110000 */
    T_REJECTS("\"\xf5\x80\x80\x80\"", "above U+10FFFF");
    T_REJECTS("\"\xff\"", "invalid lead byte");
    T_REJECTS("\"ab\x80\"", "unexpected continuation byte) at byte offset 3");
    T_REJECTS("\"\xe3\x81\"", "truncated sequence) at byte offset 1");
    T_REJECTS("\"\xe3\x81", "truncated");
    T_REJECTS("\"\xf0\x9f\x98", "truncated");
    T_REJECTS("[\xc3\xa9]", "unexpected byte 0xc3");
    T_REJECTS("\xef\xbb\xbf{}", "byte order mark");
}

static void
test_surrogate_escapes(void)
{
    T_REJECTS("\"\\uD800\"", "unpaired surrogate escape (high half without low) at byte "
                             "offset 1");
    T_REJECTS("\"\\uD800x\"", "unpaired surrogate");
    T_REJECTS("\"\\uD800\\u0041\"", "unpaired surrogate");
    T_REJECTS("\"\\uD800\\uD800\"", "unpaired surrogate");
    T_REJECTS("\"\\uDC00\"", "low half without high");
    T_REJECTS("\"\\uDBFF\\uDFFF\\uDC00\"", "low half without high");
    T_ACCEPTS("\"\\uDBFF\\uDFFF\"");
    T_REJECTS("\"\\u12G4\"", "4 hex digits");
    T_REJECTS("\"\\u12\"", "4 hex digits");
    T_REJECTS("\"\\x41\"", "invalid escape");
    T_REJECTS("\"\\", "unterminated string");
}

static void
test_depth(void)
{
    size_t n = 10000;
    char *deep = xmalloc(2 * n);
    char *e;
    int64_t t0;

    memset(deep, '[', n);
    memset(deep + n, ']', n);
    t0 = util_mono_us();
    e = reject_n(deep, 2 * n, JSON_MAX_DEPTH);
    T_CONTAINS(e, "nesting deeper than 64 at byte offset 64");
    free(e);
    /* Even with a huge limit the validator refuses past cJSON's own limit, no recursion. */
    e = reject_n(deep, 2 * n, 1 << 30);
    T_CONTAINS(e, "nesting deeper than 1000");
    free(e);
    T_ASSERT(util_mono_us() - t0 < 1000000);
    /* Exactly 64 levels pass, 65 do not. */
    e = reject_n(deep + n - 64, 128, 64);
    T_ASSERT(e == NULL);
    free(e);
    memset(deep, '{', n);
    e = reject_n(deep, n, JSON_MAX_DEPTH);
    T_CONTAINS(e, "at byte offset 1"); /* '{' needs a key */
    free(e);
    e = reject("{\"a\":{\"a\":{\"a\":1}}}");
    T_ASSERT(e == NULL);
    free(e);
    e = reject_n("{\"a\":{\"a\":{\"a\":1}}}", strlen("{\"a\":{\"a\":{\"a\":1}}}"), 2);
    T_CONTAINS(e, "nesting deeper than 2");
    free(e);
    free(deep);
}

static void
test_numbers(void)
{
    T_REJECTS("01", "leading zero) at byte offset 0");
    T_REJECTS("[-01]", "leading zero) at byte offset 1");
    T_REJECTS("[00]", "leading zero");
    T_REJECTS("[1.]", "after '.'");
    T_REJECTS("[.5]", "unexpected '.'");
    T_REJECTS("[+1]", "unexpected '+'");
    T_REJECTS("[1e]", "exponent");
    T_REJECTS("[-]", "expected a digit");
    T_REJECTS("[0x10]", "expected ',' or ']'");
    T_REJECTS("[1e400]", "number out of range");
    T_REJECTS("[NaN]", "unexpected 'N'");
    T_REJECTS("[Infinity]", "unexpected 'I'");
    T_REJECTS("[1111111111111111111111111111111111111111111111111111111111111111]",
              "number longer than 63 bytes");
    T_ACCEPTS("[1e-400]");
    T_ACCEPTS("[123456789012345678901234567890]");
}

static void
test_literals_and_structure(void)
{
    T_REJECTS("", "empty input");
    T_REJECTS("  \n ", "empty input");
    T_REJECTS("tru", "invalid literal");
    T_REJECTS("nul", "invalid literal");
    T_REJECTS("True", "unexpected 'T'");
    T_REJECTS("truex", "expected end of input");
    T_REJECTS("{} {}", "expected end of input after the value at byte offset 3");
    T_REJECTS("{}x", "unexpected 'x'");
    T_REJECTS("[1,]", "unexpected ']', expected a value at byte offset 3");
    T_REJECTS("[1 2]", "expected ',' or ']'");
    T_REJECTS("{\"a\":1,}", "expected a string key");
    T_REJECTS("{\"a\" 1}", "expected ':'");
    T_REJECTS("{'a':1}", "unexpected '''");
    T_REJECTS("{a:1}", "expected a string key");
    T_REJECTS("[1", "unexpected end of input");
    T_REJECTS("{\"a\":1", "unexpected end of input, expected ',' or '}'");
    T_REJECTS("\"abc", "unterminated string at byte offset 0");
    T_REJECTS("[1]]", "expected end of input");
    T_REJECTS("\f[]", "unexpected byte 0x0c"); /* form feed is not JSON whitespace */
    T_REJECTS("/* c */ {}", "unexpected '/'");
}

static void
test_duplicate_keys(void)
{
    T_REJECTS("{\"a\":1,\"b\":2,\"a\":3}", "duplicate key \"a\" in object at $");
    /* Escapes are decoded before comparing: "\u0061" is "a". */
    T_REJECTS("{\"a\":1,\"\\u0061\":2}", "duplicate key \"a\"");
    T_REJECTS("{\"records\":[{\"x\":1},{\"source\":\"a\",\"source\":\"b\"}]}",
              "duplicate key \"source\" in object at $.records[1]");
    /* Many members: the sorted path. */
    T_REJECTS("{\"k1\":1,\"k2\":1,\"k3\":1,\"k4\":1,\"k5\":1,\"k6\":1,\"k7\":1,\"k8\":1,"
              "\"k9\":1,\"k10\":1,\"k5\":2}",
              "duplicate key \"k5\"");
    T_ACCEPTS("{\"k1\":1,\"k2\":1,\"k3\":1,\"k4\":1,\"k5\":1,\"k6\":1,\"k7\":1,\"k8\":1,"
              "\"k9\":1,\"k10\":1,\"k11\":2}");
    T_REJECTS("{\"a b\":{\"x\":1,\"x\":1}}", "at $[\"a b\"]");
    /* The hash set: keys alike in their first 8 bytes or in length, and objects larger
     * than its table on the stack (300 members). */
    T_ACCEPTS("{\"abcdefgh\":1,\"abcdefghi\":1,\"abcdefgh1\":1,\"abcdefgh2\":1,\"x\":1,"
              "\"abcdefg\":1,\"abcdefghabcdefgh\":1,\"abcdefghabcdefgi\":1,\"y\":1}");
    T_REJECTS("{\"abcdefgh\":1,\"abcdefghi\":1,\"abcdefgh1\":1,\"abcdefgh2\":1,\"x\":1,"
              "\"abcdefg\":1,\"abcdefghabcdefgh\":1,\"abcdefghabcdefgi\":1,"
              "\"abcdefghabcdefgh\":2}",
              "duplicate key \"abcdefghabcdefgh\"");
    {
        struct buf b;

        for (int dup = 0; dup < 2; dup++) {
            cJSON *tree = NULL;
            char *err = NULL;

            buf_init(&b, 0);
            (void)!buf_puts(&b, "{");
            for (int i = 0; i < 300; i++) {
                (void)!buf_printf(&b, "%s\"member-%d\":%d", i ? "," : "", i, i);
            }
            if (dup) {
                (void)!buf_puts(&b, ",\"member-150\":0");
            }
            (void)!buf_puts(&b, "}");
            T_EQ_INT(json_parse_strict(b.data, b.len, JSON_MAX_DEPTH, &tree, &err), dup ? -1 : 0);
            if (dup) {
                T_CONTAINS(err, "duplicate key \"member-150\"");
            }
            cJSON_Delete(tree);
            free(err);
            buf_free(&b);
        }
    }
    /* The same key in different objects is fine. */
    T_ACCEPTS("[{\"a\":1},{\"a\":2}]");
}

static void
test_case_sensitive_get(void)
{
    cJSON *tree = NULL;
    char *err = NULL;
    const char *s = "{\"Source\":\"upper\",\"title\":\"t\"}";

    T_REQUIRE(json_parse_strict(s, strlen(s), 4, &tree, &err) == 0);
    T_ASSERT(json_get(tree, "source") == NULL);
    T_EQ_STR(json_get_string(tree, "Source"), "upper");
    T_ASSERT(json_get_string(tree, "Title") == NULL);
    T_ASSERT(json_get(cJSON_GetObjectItemCaseSensitive(tree, "title"), "x") == NULL);
    T_ASSERT(json_get(NULL, "x") == NULL);
    cJSON_Delete(tree);
}

static void
test_print_roundtrip(void)
{
    cJSON *tree = NULL, *again = NULL;
    char *err = NULL, *out, *out2;
    const char *s = " { \"b\" : [ 1 , 2.5 , \"\\u00e9\\n\" ] , \"a\" : { } } ";

    T_REQUIRE(json_parse_strict(s, strlen(s), 8, &tree, &err) == 0);
    out = json_print(tree);
    T_EQ_STR(out, "{\"b\":[1,2.5,\"\xc3\xa9\\n\"],\"a\":{}}");
    T_REQUIRE(json_parse_strict(out, strlen(out), 8, &again, &err) == 0);
    out2 = json_print(again);
    T_EQ_STR(out, out2);
    free(out);
    free(out2);
    cJSON_Delete(tree);
    cJSON_Delete(again);
}

/* The exact bytes of each record of an envelope, whatever the spacing, strings holding
 * brackets and quotes, nesting, or members before and after the array. */
static void
test_array_spans(void)
{
    static const struct {
        const char *text, *key;
        long n;
        const char *items[3];
    } cases[] = {
        { "{\"records\":[{\"a\":1}, {\"b\" : \"]}\\\"[{\"} ,\n\t{\"c\":[1,{\"d\":[]}]}]}",
          "records",
          3,
          { "{\"a\":1}", "{\"b\" : \"]}\\\"[{\"}", "{\"c\":[1,{\"d\":[]}]}" } },
        { " { \"x\" : {\"records\":5}, \"records\" : [ 1 , \"s\" , null ] , \"y\":[] } ",
          "records",
          3,
          { "1", "\"s\"", "null" } },
        { "[ {\"source\":\"a\"} ,{} ]", NULL, 2, { "{\"source\":\"a\"}", "{}" } },
        { "{\"value\":[]}", "value", 0, { NULL } },
        { "{\"records\":{}}", "records", -1, { NULL } },
        { "{\"other\":[1]}", "records", -1, { NULL } },
        { "{\"rec\\u006frds\":[1]}", "records", -1, { NULL } },
        { "{}", NULL, -1, { NULL } },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct json_span *sp = NULL;
        cJSON *tree = NULL;
        char *err = NULL;
        long n;

        /* The text must be what the strict parser accepts. */
        T_REQUIRE(json_parse_strict(cases[i].text, strlen(cases[i].text), JSON_MAX_DEPTH, &tree,
                                    &err) == 0);
        cJSON_Delete(tree);
        n = json_array_spans(cases[i].text, strlen(cases[i].text), cases[i].key, &sp);
        T_EQ_INT(n, cases[i].n);
        /* The spans the one pass notes are the same bytes. */
        {
            struct json_doc *d = NULL;
            const struct json_span *ds = NULL;
            const cJSON *root;
            const cJSON *arr;
            long dn;

            T_REQUIRE(json_doc_parse(cases[i].text, strlen(cases[i].text), JSON_MAX_DEPTH, &d,
                                     &err) == 0);
            root = json_doc_root(d);
            arr = cases[i].key != NULL ? json_get(root, cases[i].key) : root;
            dn = arr != NULL ? json_doc_spans(d, arr, &ds) : -1;
            if (n >= 0) { /* the one pass also finds a key spelled with escapes */
                T_EQ_INT(dn, n);
            }
            for (long k = 0; k < dn && k < n; k++) {
                T_ASSERT(ds[k].off == sp[k].off && ds[k].len == sp[k].len);
            }
            json_doc_free(d);
        }
        for (long k = 0; k < n && k < 3; k++) {
            const char *want = cases[i].items[k];

            if (sp[k].len != strlen(want) || memcmp(cases[i].text + sp[k].off, want, sp[k].len)) {
                T_FAIL_("case %zu item %ld: \"%.*s\" != \"%s\"", i, k, (int)sp[k].len,
                        cases[i].text + sp[k].off, want);
            }
        }
        free(sp);
    }
}

/* The one-pass parser reads plain string runs sixteen (or eight) bytes at a time and
 * decodes each string in place in its copy of the text: every special byte (a quote, a
 * backslash escape, a control character, UTF-8, a bad byte) at every position of strings
 * of 0 to 40 bytes (two blocks and a tail), as a key and as the value right after it,
 * must be handled as the strict parser handles it (reject_n checks that both agree,
 * trees included). */
static void
test_doc_strings_every_position(void)
{
    static const char *const specials[] = { "\\\"",           "\\\\", "\\n",  "\\u00e9",
                                            "\\ud83d\\ude00", "\x01", "\x1f", "\xe7\xaf\x9d",
                                            "\xff",           "\xc3", "\"",   "\x7f" };

    for (size_t k = 0; k < sizeof(specials) / sizeof(specials[0]); k++) {
        for (size_t len = 0; len <= 40; len++) {
            for (size_t at = 0; at <= len; at++) {
                char body[64], text[200];
                int n;

                memset(body, 'a', len);
                body[len] = '\0';
                n = snprintf(text, sizeof(text), "{\"%.*s%s%s\":\"%.*s%s%s\"}", (int)at, body,
                             specials[k], body + at, (int)at, body, specials[k], body + at);
                free(reject_n(text, (size_t)n, JSON_MAX_DEPTH));
            }
        }
    }
}

/* Spans noted by the one pass where the scan of the text cannot find them (a key spelled
 * with escapes) or must not (an array deeper down), and for every element of a larger
 * envelope with white space of every kind between its records. */
static void
test_doc_spans(void)
{
    static const char *text = "{\"rec\\u006frds\":[ {\"a\":[1,[2]]} ,\"x\"],\"n\":{\"m\":[3]}}";
    struct json_doc *d = NULL;
    const struct json_span *sp = NULL;
    char *err = NULL;
    struct buf b;

    T_REQUIRE(json_doc_parse(text, strlen(text), JSON_MAX_DEPTH, &d, &err) == 0);
    T_EQ_INT(json_doc_spans(d, json_get(json_doc_root(d), "records"), &sp), 2);
    T_ASSERT(sp[0].len == 13 && memcmp(text + sp[0].off, "{\"a\":[1,[2]]}", 13) == 0);
    T_ASSERT(sp[1].len == 3 && memcmp(text + sp[1].off, "\"x\"", 3) == 0);
    /* not noted: an array inside a record, an array of a nested object */
    T_EQ_INT(json_doc_spans(d, json_get(json_doc_root(d)->child->child, "a"), &sp), -1);
    T_EQ_INT(json_doc_spans(d, json_get(json_get(json_doc_root(d), "n"), "m"), &sp), -1);
    json_doc_free(d);
    buf_init(&b, 0);
    (void)!buf_puts(&b, "{\"records\":[");
    for (int i = 0; i < 500; i++) {
        (void)!buf_printf(&b, "%s{\"id\":%d,\"s\":\"%*s\"}%s", i ? "," : "", i, i % 17, "",
                          i % 3 ? " \r\n\t" : "");
    }
    (void)!buf_puts(&b, "]}");
    T_REQUIRE(json_doc_parse(b.data, b.len, JSON_MAX_DEPTH, &d, &err) == 0);
    {
        struct json_span *want = NULL;
        long n = json_array_spans(b.data, b.len, "records", &want);

        T_EQ_INT(n, 500);
        T_EQ_INT(json_doc_spans(d, json_get(json_doc_root(d), "records"), &sp), 500);
        for (long k = 0; k < n; k++) {
            T_ASSERT(sp[k].off == want[k].off && sp[k].len == want[k].len);
        }
        free(want);
    }
    json_doc_free(d);
    buf_free(&b);
    free(err);
}

TEST_LIST = {
    { "doc_spans", test_doc_spans },
    { "doc_strings_every_position", test_doc_strings_every_position },
    { "array_spans", test_array_spans },
    { "accepts_valid", test_accepts_valid },
    { "parse_values", test_parse_values },
    { "nul_escape", test_nul_escape },
    { "raw_nul", test_raw_nul },
    { "control_chars", test_control_chars },
    { "invalid_utf8", test_invalid_utf8 },
    { "surrogate_escapes", test_surrogate_escapes },
    { "depth", test_depth },
    { "numbers", test_numbers },
    { "literals_and_structure", test_literals_and_structure },
    { "duplicate_keys", test_duplicate_keys },
    { "case_sensitive_get", test_case_sensitive_get },
    { "print_roundtrip", test_print_roundtrip },
    { NULL, NULL },
};
