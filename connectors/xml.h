/* xml.h: XML documents for the connectors of XML APIs, on libexpat: a small element tree
 * read from an answer (bounded in depth, elements and text; no DOCTYPE, so no entity
 * tricks), lookups by child path, and the escaping of values written into a request
 * document. Answers are read with a parser, never by searching their text. */
#ifndef KAGARI_XML_H
#define KAGARI_XML_H

#include <stddef.h>

#include "engine/kagari.h"

#define XML_MAX_DEPTH 64
#define XML_MAX_ELEMENTS 100000
#define XML_MAX_TEXT (256 * 1024) /* per element */

/* One element: its name, attributes, text (its own character data, white space
 * trimmed at both ends) and children in document order. The whole tree belongs to its
 * root: xml_free(root). */
struct xml_node {
    char *name;
    char **attrs; /* name, value, ..., NULL */
    char *text;
    struct xml_node *parent, *child, *last, *next;
};

/* Parse n bytes as one XML document (UTF-8). 0 with *out (xml_free it), or -1 with a
 * message in *errp: not well-formed (with line and column), a DOCTYPE, or over the
 * limits above. */
int xml_parse(const char *s, size_t n, struct xml_node **out, char **errp) KG_WUR;
void xml_free(struct xml_node *root); /* NULL is a no-op */

/* The attribute's value, or NULL. */
const char *xml_attr(const struct xml_node *n, const char *name);
/* The first child with this name, or NULL. */
struct xml_node *xml_child(const struct xml_node *n, const char *name);
/* Follow a path of child names separated by '/' ("result/job/status"), first match at
 * each step; NULL when a step is missing. */
struct xml_node *xml_path(const struct xml_node *n, const char *path);
/* The text of the element at path under n ("" when it has none), or NULL when missing. */
const char *xml_path_text(const struct xml_node *n, const char *path);
/* Append the text of n and of every element under it, in document order, each piece
 * that is not empty separated by sep. */
void xml_text_all(const struct xml_node *n, struct buf *b, const char *sep);

/* Append s escaped for XML text and attribute values alike (& < > " '). Returns -1,
 * appending nothing, when s holds what XML 1.0 cannot carry at all (control characters
 * other than tab, LF, CR) or is not UTF-8: such a value is refused, not altered. */
int xml_escape(struct buf *b, const char *s) KG_WUR;

#endif
