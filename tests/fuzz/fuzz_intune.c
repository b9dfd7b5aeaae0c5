/* fuzz_intune.c: the intune normalizer family on Intune audit and device compliance records
 * (tests/fuzz/normfuzz.h says what is checked). Corpus: tests/fuzz/corpus/intune/. */
#include "engine/norm_intune.h"
#include "tests/fuzz/normfuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return normfuzz_run(&norm_intune_family, data, size);
}
