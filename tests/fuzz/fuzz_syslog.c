/* fuzz_syslog.c: RFC 6587 framing and syslog header parsing on an arbitrary byte stream,
 * fed in chunks whose sizes come from the input. Every frame lies inside the stream,
 * consumption always progresses, and the header parser's body lies inside its frame. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/syslog.h"
#include "engine/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct syslog_framer fr = { SYSLOG_FRAMING_UNKNOWN, 0, 0 };
    const char *p;
    size_t have = 0, pos = 0, step;

    if (size < 1) {
        return 0;
    }
    fr.max = 16 + (size_t)data[0] * 4; /* small limits reach the over-long paths */
    step = 1 + (size_t)(data[0] % 97);
    p = (const char *)data + 1;
    size--;
    while (pos < size) {
        have = have + step > size ? size : have + step; /* bytes that have "arrived" */
        for (;;) {
            size_t used, off, mlen;
            const char *why;
            enum syslog_frame_rc rc =
                syslog_frame(&fr, p + pos, have - pos, &used, &off, &mlen, &why);

            if (rc == SYSLOG_FRAME_MORE) {
                if (used != 0) {
                    abort();
                }
                break;
            }
            if (used == 0 || pos + used > have) {
                fprintf(stderr, "fuzz_syslog: no progress or past the data\n");
                abort();
            }
            if (rc == SYSLOG_FRAME_OK) {
                struct syslog_msg m;
                const char *frame = p + pos + off;

                if (off + mlen > used || mlen > fr.max) {
                    abort();
                }
                if (syslog_parse(frame, mlen, &m, &why) == 0) {
                    if (m.body < frame || m.body + m.body_len > frame + mlen ||
                        (m.host != NULL &&
                         (m.host < frame || m.host + m.host_len > frame + mlen))) {
                        fprintf(stderr, "fuzz_syslog: parse result outside the frame\n");
                        abort();
                    }
                } else if (why == NULL) {
                    abort();
                }
            }
            pos += used;
            if (rc == SYSLOG_FRAME_FATAL) {
                return 0; /* the listener closes such a connection */
            }
            if (pos >= have) {
                break;
            }
        }
        if (have == size && pos < size) {
            break; /* the rest waits for bytes that never come */
        }
    }
    return 0;
}
