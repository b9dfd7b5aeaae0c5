/* fuzz_azfw.c: the azfw normalizer family on Azure Firewall records, legacy free text and AZFW*
 * columns (tests/fuzz/normfuzz.h says what is checked). Corpus: tests/fuzz/corpus/azfw/. */
#include "engine/norm_azfw.h"
#include "tests/fuzz/normfuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return normfuzz_run(&norm_azfw_family, data, size);
}
