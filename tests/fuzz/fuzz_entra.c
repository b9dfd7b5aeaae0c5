/* fuzz_entra.c: the entra normalizer family on Entra ID sign-in, audit, risk detection and
 * risky-user records (tests/fuzz/normfuzz.h says what is checked). Corpus:
 * tests/fuzz/corpus/entra/. */
#include "engine/norm_entra.h"
#include "tests/fuzz/normfuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return normfuzz_run(&norm_entra_family, data, size);
}
