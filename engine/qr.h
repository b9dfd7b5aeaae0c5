/* qr.h: QR codes (libqrencode) for TOTP enrolment: as text for a terminal and as SVG
 * for the API and the portal. */
#ifndef KAGARI_QR_H
#define KAGARI_QR_H

#include "engine/util.h"

/* The QR code of text (error correction level M) drawn with Unicode half blocks, two
 * module rows per line, light modules in full blocks so that it reads on a dark
 * terminal, with a quiet zone of 2 modules. NULL when text does not fit a QR code. */
char *qr_text(const char *text);
/* The same as a standalone SVG document (one path, 4-module quiet zone, scale 4). */
char *qr_svg(const char *text);

#endif
