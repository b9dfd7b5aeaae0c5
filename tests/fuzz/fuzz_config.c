/* fuzz_config.c: config_load_buffer on arbitrary text. It must succeed or fail with a
 * message, never crash, leak or hang (the evaluation has a memory cap and a budget). */
#include "engine/config.h"

#include <stdint.h>
#include <stdlib.h>

#include "engine/escalate.h"
#include "engine/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config cfg;
    char *err = NULL;

    registry_init(); /* the connectors' tenant blocks are part of the language */
    escalate_config_init();
    if (config_load_buffer((const char *)data, size, "fuzz.conf.lua", &cfg, &err) == 0) {
        config_free(&cfg);
    } else if (err == NULL) {
        abort(); /* every failure has a message */
    }
    free(err);
    return 0;
}
