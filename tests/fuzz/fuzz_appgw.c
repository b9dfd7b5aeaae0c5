/* fuzz_appgw.c: the appgw normalizer family on Application Gateway access and WAF records
 * (tests/fuzz/normfuzz.h says what is checked). Corpus: tests/fuzz/corpus/appgw/. */
#include "engine/norm_appgw.h"
#include "tests/fuzz/normfuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return normfuzz_run(&norm_appgw_family, data, size);
}
