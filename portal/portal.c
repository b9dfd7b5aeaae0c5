/* portal.c: the web portal's page and static files on the people's API listener. */
#include "portal/portal.h"

#include <string.h>

#include "portal/portal_assets.h"

/* The file called name, or NULL. Names come from the request: only an exact match with
 * the embedded table counts, so no path is ever built from them. */
static const struct portal_asset *
portal_find(const char *name)
{
    for (size_t i = 0; i < portal_nassets; i++) {
        if (strcmp(portal_assets[i].name, name) == 0) {
            return &portal_assets[i];
        }
    }
    return NULL;
}

void
portal_headers(struct http_request *h)
{
    http_reply_header(h, "Strict-Transport-Security", "max-age=31536000; includeSubDomains");
    http_reply_header(h, "Content-Security-Policy", PORTAL_CSP);
    http_reply_header(h, "X-Content-Type-Options", "nosniff");
    http_reply_header(h, "X-Frame-Options", "DENY");
    http_reply_header(h, "Referrer-Policy", "no-referrer");
    http_reply_header(h, "Cross-Origin-Opener-Policy", "same-origin");
    http_reply_header(h, "Cross-Origin-Resource-Policy", "same-origin");
    http_reply_header(h, "Permissions-Policy", "camera=(), microphone=(), geolocation=()");
}

/* Send one file: 304 when the browser's copy is current (the ETag is the content's
 * digest, so a new build is seen at once), else the bytes. Browsers revalidate each
 * time (no-cache): the files are small and the loop answers from memory. */
static void
portal_send(struct http_request *h, int status, const struct portal_asset *a)
{
    const char *inm = http_request_header(h, "If-None-Match");

    portal_headers(h);
    http_reply_header(h, "Cache-Control", "no-cache");
    http_reply_header(h, "ETag", a->etag);
    if (status == 200 && inm != NULL && strstr(inm, a->etag) != NULL) {
        http_reply(h, 304, NULL, NULL, 0);
        return;
    }
    http_reply(h, status, a->type, (const char *)a->data, a->len);
}

int
portal_serve(struct http_request *h)
{
    const char *path = http_request_path(h);
    const char *method = http_request_method(h);
    const struct portal_asset *a = NULL;

    if (strcmp(path, "/api") == 0 || strncmp(path, "/api/", 5) == 0) {
        return 0;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        portal_headers(h);
        http_reply_header(h, "Allow", "GET, HEAD");
        http_reply(h, 405, "text/plain; charset=utf-8", "method not allowed\n", 19);
        return 1;
    }
    if (strcmp(path, "/") == 0) {
        a = portal_find("index.html");
    } else if (strncmp(path, "/assets/", 8) == 0 && strchr(path + 8, '/') == NULL) {
        a = portal_find(path + 8);
    }
    if (a != NULL) {
        portal_send(h, 200, a);
    } else if ((a = portal_find("404.html")) != NULL) {
        portal_send(h, 404, a);
    } else {
        portal_headers(h);
        http_reply(h, 404, "text/plain; charset=utf-8", "not found\n", 10);
    }
    return 1;
}
