/* fuzz_xml.c: the connectors' XML reader on arbitrary bytes (an answer from a firewall
 * or from whatever sits in its place). Whatever it accepts is a tree whose text, escaped
 * back into a document, parses again to the same text; escaping never lets a value
 * change a document's structure. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_xml: %s: %s\n", what, detail != NULL ? detail : "");
    abort();
}

/* Escape text into an attribute and an element and read it back. */
static void
roundtrip(const char *text)
{
    struct buf b;
    struct xml_node *r = NULL;
    char *err = NULL;

    buf_init(&b, 0);
    (void)!buf_puts(&b, "<e a=\"");
    if (xml_escape(&b, text) == -1) {
        buf_free(&b);
        return; /* refused: a control character or not UTF-8 */
    }
    (void)!buf_puts(&b, "\"/>");
    if (xml_parse(b.data, b.len, &r, &err) == -1) {
        fuzz_die("an escaped value broke the document", err);
    }
    if (strcmp(xml_attr(r, "a"), text) != 0 || r->child != NULL) {
        fuzz_die("an escaped value came back different", text);
    }
    xml_free(r);
    buf_free(&b);
}

static void
walk(const struct xml_node *n, int depth)
{
    if (depth > XML_MAX_DEPTH) {
        fuzz_die("tree deeper than the limit", n->name);
    }
    for (; n != NULL; n = n->next) {
        roundtrip(n->text);
        for (size_t i = 0; n->attrs[i] != NULL; i += 2) {
            roundtrip(n->attrs[i + 1]);
        }
        walk(n->child, depth + 1);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct xml_node *root = NULL;
    char *err = NULL;
    char *text = malloc(size + 1);

    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    if (xml_parse((const char *)data, size, &root, &err) == 0) {
        walk(root, 1);
        xml_free(root);
    } else {
        free(err);
    }
    if (strlen(text) == size) {
        roundtrip(text);
    }
    free(text);
    return 0;
}
