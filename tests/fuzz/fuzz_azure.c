/* fuzz_azure.c: the azure normalizer family on Azure Activity log and Bastion records
 * (tests/fuzz/normfuzz.h says what is checked). Corpus: tests/fuzz/corpus/azure/. */
#include "engine/norm_azure.h"
#include "tests/fuzz/normfuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return normfuzz_run(&norm_azure_family, data, size);
}
