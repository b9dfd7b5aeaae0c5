/* qr.c: QR codes as terminal text and SVG. */
#include "engine/qr.h"

#include <qrencode.h>

#define QR_TEXT_QUIET 2
#define QR_SVG_QUIET 4

static QRcode *
qr_encode(const char *text)
{
    return QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
}

/* Dark module at (x, y), with everything outside the symbol light (the quiet zone). */
static int
qr_dark(const QRcode *q, int x, int y)
{
    if (x < 0 || y < 0 || x >= q->width || y >= q->width) {
        return 0;
    }
    return q->data[y * q->width + x] & 1;
}

char *
qr_text(const char *text)
{
    static const char *const cell[4] = {
        "\xe2\x96\x88", /* both light: full block */
        "\xe2\x96\x84", /* top dark: lower half */
        "\xe2\x96\x80", /* bottom dark: upper half */
        " ",            /* both dark */
    };
    QRcode *q = qr_encode(text);
    struct buf b;
    int lo = -QR_TEXT_QUIET, hi;

    if (q == NULL) {
        return NULL;
    }
    hi = q->width + QR_TEXT_QUIET;
    buf_init(&b, 0);
    for (int y = lo; y < hi; y += 2) {
        for (int x = lo; x < hi; x++) {
            int k = (qr_dark(q, x, y) ? 1 : 0) | (y + 1 < hi && qr_dark(q, x, y + 1) ? 2 : 0);

            if (y + 1 >= hi) {
                k |= 2; /* the line below the code is the terminal's own (dark) */
            }
            (void)!buf_puts(&b, cell[k]);
        }
        (void)!buf_puts(&b, "\n");
    }
    QRcode_free(q);
    return buf_take(&b);
}

char *
qr_svg(const char *text)
{
    QRcode *q = qr_encode(text);
    struct buf b;
    int size;

    if (q == NULL) {
        return NULL;
    }
    size = q->width + 2 * QR_SVG_QUIET;
    buf_init(&b, 0);
    (void)!buf_printf(&b,
                      "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
                      "width=\"%d\" height=\"%d\" shape-rendering=\"crispEdges\">"
                      "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/><path fill=\"#000\" d=\"",
                      size, size, size * 4, size * 4, size, size);
    for (int y = 0; y < q->width; y++) {
        for (int x = 0; x < q->width; x++) {
            if (qr_dark(q, x, y)) {
                (void)!buf_printf(&b, "M%d %dh1v1h-1z", x + QR_SVG_QUIET, y + QR_SVG_QUIET);
            }
        }
    }
    (void)!buf_puts(&b, "\"/></svg>");
    QRcode_free(q);
    return buf_take(&b);
}
