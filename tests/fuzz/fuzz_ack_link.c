/* fuzz_ack_link.c: escalate_parse_link on arbitrary bytes (an acknowledge link's path
 * comes from anyone who can reach the intake). It must accept only the exact shape and
 * fill parts that hold to it; never crash, overflow or read past the input. */
#include "engine/escalate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *path = malloc(size + 1);
    char tenant[64], mac[65];
    long long id = -1, expires = -1;
    int contact = -1;

    if (path == NULL) {
        return 0;
    }
    memcpy(path, data, size);
    path[size] = '\0';
    if (escalate_parse_link(path, tenant, &id, &contact, &expires, mac) == 0) {
        size_t n = strlen(tenant);

        if (n == 0 || n > 63 || strspn(tenant, "abcdefghijklmnopqrstuvwxyz0123456789-") != n ||
            strlen(mac) != 64 || strspn(mac, "0123456789abcdef") != 64 || id < 0 || expires < 0 ||
            contact < 0 || contact > 1000000 || strncmp(path, "/ack/", 5) != 0) {
            abort(); /* accepted something that is not a link */
        }
    }
    free(path);
    return 0;
}
