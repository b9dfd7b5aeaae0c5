/* portal_assets.h: the portal's web files (portal/web/), embedded in the binary at build
 * time by scripts/embed.py; the table is generated, never written by hand. */
#ifndef KAGARI_PORTAL_ASSETS_H
#define KAGARI_PORTAL_ASSETS_H

#include <stddef.h>

struct portal_asset {
    const char *name; /* file name, e.g. "app.js" */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
    const char *etag; /* quoted, strong */
};

extern const struct portal_asset portal_assets[];
extern const size_t portal_nassets;

#endif
