/* fuzz_defender.c: the defender normalizer family on Defender XDR Graph alerts and incidents and
 * streamed advanced-hunting rows (tests/fuzz/normfuzz.h says what is checked). Corpus:
 * tests/fuzz/corpus/defender/. */
#include "engine/norm_defender.h"
#include "tests/fuzz/normfuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return normfuzz_run(&norm_defender_family, data, size);
}
