/* portal.h: the web portal on the people's API listener: the page and its static files
 * (plain HTML, CSS and JavaScript modules embedded in the binary), each answer with the
 * portal's security headers. The portal holds no data of its own: its pages read and
 * change everything through the documented /api/v1/ routes, as any client would. */
#ifndef KAGARI_PORTAL_H
#define KAGARI_PORTAL_H

#include "engine/http.h"

/* The Content-Security-Policy of the portal's answers: scripts, styles and connections
 * from this origin only, no inline script or style, no framing. */
#define PORTAL_CSP                                                                                 \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "              \
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "                    \
    "form-action 'self'; frame-ancestors 'none'"

/* Answer h when its path is the portal's ("/", "/assets/<file>", or any other path outside
 * /api/, which gets the portal's 404 page): 1 when answered (h is then gone), 0 when the
 * path belongs to the API. */
int portal_serve(struct http_request *h);

/* The security headers of every portal answer (HSTS, CSP, no-sniff, no framing, no
 * referrer). */
void portal_headers(struct http_request *h);

#endif
