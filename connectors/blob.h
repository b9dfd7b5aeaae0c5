/* blob.h: the Azure Blob storage poller, an intake source: per tenant, the diagnostic
 * settings containers (insights-logs-*) listed and their append blobs read from the byte
 * offset each reached, one JSON record per line, through the engine's normalizers and the
 * admit step; the offset moves in the same commit as the records it covers. Also the
 * reader of a List Blobs answer (EnumerationResults), fuzzed on its own. */
#ifndef KAGARI_BLOB_H
#define KAGARI_BLOB_H

#include <stdint.h>

#include "engine/kagari.h"

/* One blob of a listing. */
struct blob_item {
    char *name;
    char *created;       /* Creation-Time as sent ("" when missing) */
    char *etag;          /* Etag as sent ("" when missing) */
    int64_t size;        /* Content-Length */
    int64_t modified_ms; /* Last-Modified, ms since the epoch (0 when missing) */
};

/* One page of a List Blobs answer. */
struct blob_listing {
    struct blob_item *items;
    size_t n;
    char *next_marker; /* NULL on the last page */
};

/* Read a List Blobs answer (n bytes of XML): 0 with *out filled (blob_listing_clear it),
 * or -1 with *errp (not XML, a DOCTYPE, not an EnumerationResults, a blob without a
 * name or with a size that is not a number). At most BLOB_LIST_MAX blobs. */
#define BLOB_LIST_MAX 5000
int blob_parse_listing(const char *xml, size_t n, struct blob_listing *out, char **errp) KG_WUR;
void blob_listing_clear(struct blob_listing *l);

/* The tenant block tenants.<id>.blob, registered by the plug-in list. */
void blob_register(void);

extern const struct source blob_source;

#endif
