/* test_xml.c: the connectors' XML helper: the element tree, path lookups, the limits and
 * refusals (DOCTYPE, depth, not well-formed, several roots), and escaping. */
#include "connectors/xml.h"

#include <stdlib.h>
#include <string.h>

#include "tests/unit/test.h"

static struct xml_node *
parse_ok(const char *s)
{
    struct xml_node *root = NULL;
    char *err = NULL;

    if (xml_parse(s, strlen(s), &root, &err) == -1) {
        fprintf(stderr, "  parse failed: %s\n", err);
        free(err);
        return NULL;
    }
    return root;
}

static void
test_tree_and_paths(void)
{
    struct xml_node *r =
        parse_ok("<response status = 'success' code=\"19\"><result>\n  <job><id> 4711 </id>"
                 "<status>FIN</status><details><line>a &amp; b</line><line>c</line></details></job>"
                 "<job><id>4712</id></job></result></response>");
    struct buf b;

    T_REQUIRE(r != NULL);
    T_EQ_STR(r->name, "response");
    T_EQ_STR(xml_attr(r, "status"), "success");
    T_EQ_STR(xml_attr(r, "code"), "19");
    T_ASSERT(xml_attr(r, "nope") == NULL);
    T_EQ_STR(xml_path_text(r, "result/job/id"), "4711");
    T_EQ_STR(xml_path_text(r, "result/job/status"), "FIN");
    T_ASSERT(xml_path_text(r, "result/job/nope") == NULL);
    T_ASSERT(xml_path(r, "") == r);
    T_EQ_STR(xml_child(r, "result")->child->next->child->text, "4712");
    buf_init(&b, 0);
    xml_text_all(xml_path(r, "result/job/details"), &b, "; ");
    T_EQ_STR(b.data, "a & b; c");
    buf_free(&b);
    xml_free(r);
    xml_free(NULL);
}

static void
expect_refused(const char *s, size_t n, const char *word)
{
    struct xml_node *root = (struct xml_node *)1;
    char *err = NULL;

    T_EQ_INT(xml_parse(s, n, &root, &err), -1);
    T_ASSERT(root == NULL);
    T_REQUIRE(err != NULL);
    if (word != NULL && strstr(err, word) == NULL) {
        fprintf(stderr, "  message %s lacks %s\n", err, word);
        test_failed_ = 1;
    }
    free(err);
}

static void
test_refusals(void)
{
    struct buf deep;

    expect_refused("", strlen(""), "XML");
    expect_refused("<a>", strlen("<a>"), "XML");
    expect_refused("<a></b>", strlen("<a></b>"), "mismatched");
    expect_refused("<a/><b/>", strlen("<a/><b/>"), NULL);
    expect_refused("<a x='1' x='2'/>", strlen("<a x='1' x='2'/>"), NULL);
    expect_refused("<a>\x01</a>", strlen("<a>\x01</a>"), NULL);
    expect_refused("<a>\xff\xfe</a>", strlen("<a>\xff\xfe</a>"), NULL);
    expect_refused("<a>x\0y</a>", sizeof("<a>x\0y</a>") - 1, NULL);
    expect_refused("<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>",
                   strlen("<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>"), "DOCTYPE");
    {
        static const char bomb[] = "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol "
                                   "\"lol\"><!ENTITY lol2 \"&lol;&lol;\">]><lolz>&lol2;</lolz>";

        expect_refused(bomb, strlen(bomb), "DOCTYPE");
    }
    expect_refused("<a>&unknown;</a>", strlen("<a>&unknown;</a>"), NULL);
    buf_init(&deep, 0);
    for (int i = 0; i < XML_MAX_DEPTH + 1; i++) {
        (void)!buf_puts(&deep, "<a>");
    }
    for (int i = 0; i < XML_MAX_DEPTH + 1; i++) {
        (void)!buf_puts(&deep, "</a>");
    }
    expect_refused(deep.data, deep.len, "deeply");
    buf_free(&deep);
}

static void
test_escape(void)
{
    static const char *const hostile[] = {
        "a'b",       "a\"b",        "<x>",
        "a]b",       "a/b",         "a&b",
        "]]>",       "' or '1'='1", "\xc3\xa9t\xc3\xa9",
        "tab\there", "line\nbreak", "x']/../entry[@name='y",
    };
    struct buf b;

    buf_init(&b, 0);
    T_EQ_INT(xml_escape(&b, "<a href=\"x\">&'</a>"), 0);
    T_EQ_STR(b.data, "&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;");
    b.len = 0;
    T_EQ_INT(xml_escape(&b, "a\tb\nc\rd"), 0);
    T_EQ_STR(b.data, "a&#9;b&#10;c&#13;d");
    b.len = 0;
    (void)!buf_puts(&b, "keep");
    T_EQ_INT(xml_escape(&b, "bad\x01"), -1);
    T_EQ_STR(b.data, "keep"); /* nothing appended */
    T_EQ_INT(xml_escape(&b, "\xff"), -1);
    T_EQ_INT(xml_escape(&b, "\xc0\xaf"), -1);     /* overlong '/' */
    T_EQ_INT(xml_escape(&b, "\xed\xa0\x80"), -1); /* a surrogate */
    T_EQ_INT(xml_escape(&b, "\xf4\x90\x80\x80"), -1);
    T_EQ_INT(xml_escape(&b, "\xe2\x82"), -1); /* cut */
    buf_free(&b);
    /* Whatever goes in comes back out of the parser as the same text, in an attribute
     * and in an element: escaping cannot change the document's structure. */
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        struct xml_node *r;

        buf_init(&b, 0);
        (void)!buf_puts(&b, "<e v=\"");
        T_EQ_INT(xml_escape(&b, hostile[i]), 0);
        (void)!buf_puts(&b, "\"><m>");
        T_EQ_INT(xml_escape(&b, hostile[i]), 0);
        (void)!buf_puts(&b, "</m></e>");
        r = parse_ok(b.data);
        T_REQUIRE(r != NULL);
        T_EQ_STR(xml_attr(r, "v"), hostile[i]);
        T_ASSERT(r->child != NULL && r->child->next == NULL && r->child->child == NULL);
        if (strchr(" \t\n", hostile[i][strlen(hostile[i]) - 1]) == NULL &&
            strchr(" \t\n", hostile[i][0]) == NULL) {
            T_EQ_STR(r->child->text, hostile[i]);
        }
        xml_free(r);
        buf_free(&b);
    }
}

TEST_LIST = {
    { "tree_and_paths", test_tree_and_paths },
    { "refusals", test_refusals },
    { "escape", test_escape },
    { NULL, NULL },
};
