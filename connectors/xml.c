/* xml.c: a bounded element tree from libexpat, path lookups, and escaping. */
#include "connectors/xml.h"

#include <expat.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

struct xml_parser {
    XML_Parser p;
    struct xml_node *root, *cur;
    struct buf text; /* the current element's character data */
    int depth;
    size_t elements;
    const char *why; /* our own refusal; NULL: expat's error */
};

void
xml_free(struct xml_node *n)
{
    while (n != NULL) {
        struct xml_node *next = n->next;

        xml_free(n->child);
        free(n->name);
        for (size_t i = 0; n->attrs != NULL && n->attrs[i] != NULL; i++) {
            free(n->attrs[i]);
        }
        free(n->attrs);
        free(n->text);
        free(n);
        n = next;
    }
}

static void
xml_stop(struct xml_parser *x, const char *why)
{
    if (x->why == NULL) {
        x->why = why;
    }
    XML_StopParser(x->p, XML_FALSE);
}

/* The text gathered so far belongs to x->cur (its own character data; a child's text
 * is gathered in the child). Stored trimmed when the element ends. */
static void
xml_take_text(struct xml_parser *x)
{
    const char *s = x->text.len > 0 ? x->text.data : "";
    size_t len = x->text.len;
    char *old;

    while (len > 0 && strchr(" \t\r\n", s[len - 1]) != NULL) {
        len--;
    }
    while (len > 0 && strchr(" \t\r\n", *s) != NULL) {
        s++;
        len--;
    }
    if (x->cur == NULL) {
        x->text.len = 0;
        return;
    }
    old = x->cur->text;
    if (old == NULL || old[0] == '\0') {
        free(old);
        x->cur->text = xstrndup(s, len);
    } else if (len > 0) {
        size_t ol = strlen(old);

        x->cur->text = xrealloc(old, ol + len + 1);
        memcpy(x->cur->text + ol, s, len);
        x->cur->text[ol + len] = '\0';
    }
    x->text.len = 0;
}

static void XMLCALL
x_start(void *arg, const XML_Char *name, const XML_Char **atts)
{
    struct xml_parser *x = arg;
    struct xml_node *n;
    size_t na = 0;

    if (x->depth >= XML_MAX_DEPTH) {
        xml_stop(x, "elements nested too deeply");
        return;
    }
    if (x->elements >= XML_MAX_ELEMENTS) {
        xml_stop(x, "too many elements");
        return;
    }
    if (x->root != NULL && x->cur == NULL) {
        xml_stop(x, "more than one root element");
        return;
    }
    xml_take_text(x);
    while (atts[na] != NULL) {
        na++;
    }
    n = xcalloc(1, sizeof(*n));
    n->name = xstrdup(name);
    n->attrs = xcalloc(na + 1, sizeof(char *));
    for (size_t i = 0; i < na; i++) {
        n->attrs[i] = xstrdup(atts[i]);
    }
    n->parent = x->cur;
    if (x->cur == NULL) {
        x->root = n;
    } else if (x->cur->last == NULL) {
        x->cur->child = x->cur->last = n;
    } else {
        x->cur->last->next = n;
        x->cur->last = n;
    }
    x->cur = n;
    x->depth++;
    x->elements++;
}

static void XMLCALL
x_end(void *arg, const XML_Char *name)
{
    struct xml_parser *x = arg;

    (void)name;
    if (x->cur != NULL) {
        xml_take_text(x);
        if (x->cur->text == NULL) {
            x->cur->text = xstrdup("");
        }
        x->cur = x->cur->parent;
        x->depth--;
    }
}

static void XMLCALL
x_chars(void *arg, const XML_Char *s, int len)
{
    struct xml_parser *x = arg;

    if (x->cur != NULL && len > 0 && buf_append(&x->text, s, (size_t)len) == -1) {
        xml_stop(x, "element text too long");
    }
}

/* No DTDs: no answer needs one, and entity declarations are how XML bombs start. */
static void XMLCALL
x_doctype(void *arg, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
          int has_internal_subset)
{
    (void)name;
    (void)sysid;
    (void)pubid;
    (void)has_internal_subset;
    xml_stop(arg, "a DOCTYPE is not accepted");
}

int
xml_parse(const char *s, size_t n, struct xml_node **out, char **errp)
{
    struct xml_parser x;
    int rc = 0;

    memset(&x, 0, sizeof(x));
    *out = NULL;
    if (n > INT_MAX) {
        return kg_err(errp, "XML document too large");
    }
    x.p = XML_ParserCreate("UTF-8");
    if (x.p == NULL) {
        abort(); /* out of memory, like xmalloc */
    }
    buf_init(&x.text, XML_MAX_TEXT);
    XML_SetUserData(x.p, &x);
    XML_SetElementHandler(x.p, x_start, x_end);
    XML_SetCharacterDataHandler(x.p, x_chars);
    XML_SetStartDoctypeDeclHandler(x.p, x_doctype);
    if (XML_Parse(x.p, s != NULL ? s : "", (int)n, XML_TRUE) != XML_STATUS_OK || x.why != NULL ||
        x.root == NULL) {
        if (x.why != NULL) {
            kg_err(errp, "XML: %s", x.why);
        } else if (XML_GetErrorCode(x.p) != XML_ERROR_NONE) {
            kg_err(errp, "XML: %s at line %lu, column %lu", XML_ErrorString(XML_GetErrorCode(x.p)),
                   (unsigned long)XML_GetCurrentLineNumber(x.p),
                   (unsigned long)XML_GetCurrentColumnNumber(x.p));
        } else {
            kg_err(errp, "XML: no root element");
        }
        xml_free(x.root);
        rc = -1;
    } else {
        *out = x.root;
    }
    buf_free(&x.text);
    XML_ParserFree(x.p);
    return rc;
}

const char *
xml_attr(const struct xml_node *n, const char *name)
{
    for (size_t i = 0; n != NULL && n->attrs[i] != NULL; i += 2) {
        if (strcmp(n->attrs[i], name) == 0) {
            return n->attrs[i + 1];
        }
    }
    return NULL;
}

struct xml_node *
xml_child(const struct xml_node *n, const char *name)
{
    for (struct xml_node *c = n != NULL ? n->child : NULL; c != NULL; c = c->next) {
        if (strcmp(c->name, name) == 0) {
            return c;
        }
    }
    return NULL;
}

struct xml_node *
xml_path(const struct xml_node *n, const char *path)
{
    char step[128];

    while (n != NULL && *path != '\0') {
        size_t len = strcspn(path, "/");

        if (len == 0 || len >= sizeof(step)) {
            return NULL;
        }
        memcpy(step, path, len);
        step[len] = '\0';
        n = xml_child(n, step);
        path += len;
        if (*path == '/') {
            path++;
        }
    }
    return (struct xml_node *)n;
}

const char *
xml_path_text(const struct xml_node *n, const char *path)
{
    const struct xml_node *e = xml_path(n, path);

    return e != NULL ? (e->text != NULL ? e->text : "") : NULL;
}

void
xml_text_all(const struct xml_node *n, struct buf *b, const char *sep)
{
    if (n == NULL) {
        return;
    }
    if (n->text != NULL && n->text[0] != '\0') {
        if (b->len > 0) {
            (void)!buf_puts(b, sep);
        }
        (void)!buf_puts(b, n->text);
    }
    for (const struct xml_node *c = n->child; c != NULL; c = c->next) {
        xml_text_all(c, b, sep);
    }
}

/* Length of the UTF-8 sequence at p (1-4), or 0 when it is not one (overlong forms,
 * surrogates and code points past U+10FFFF included). */
static size_t
utf8_len(const unsigned char *p)
{
    if (p[0] < 0x80) {
        return 1;
    }
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        return (p[1] & 0xc0) == 0x80 ? 2 : 0;
    }
    if (p[0] >= 0xe0 && p[0] <= 0xef) {
        if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[0] == 0xe0 && p[1] < 0xa0) ||
            (p[0] == 0xed && p[1] >= 0xa0)) {
            return 0;
        }
        return 3;
    }
    if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        if ((p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80 ||
            (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90)) {
            return 0;
        }
        return 4;
    }
    return 0;
}

int
xml_escape(struct buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t start = b->len;

    while (*p != '\0') {
        size_t n = utf8_len(p);
        const char *e = NULL;

        if (n == 0 || (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r')) {
            b->len = start;
            if (b->data != NULL) {
                b->data[start] = '\0';
            }
            return -1;
        }
        switch (*p) {
        case '&':
            e = "&amp;";
            break;
        case '<':
            e = "&lt;";
            break;
        case '>':
            e = "&gt;";
            break;
        case '"':
            e = "&quot;";
            break;
        case '\'':
            e = "&apos;";
            break;
        case '\t':
            e = "&#9;";
            break;
        case '\n':
            e = "&#10;";
            break;
        case '\r':
            e = "&#13;";
            break;
        default:
            break;
        }
        if ((e != NULL ? buf_puts(b, e) : buf_append(b, (const char *)p, n)) == -1) {
            b->len = start;
            return -1;
        }
        p += n;
    }
    return 0;
}
