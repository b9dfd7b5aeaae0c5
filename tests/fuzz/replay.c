/* replay.c: a main() for fuzz targets that feeds every file of the given folders (or
 * files) to LLVMFuzzerTestOneInput once, so make test replays the corpus with the
 * sanitizers on, without libFuzzer. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "engine/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
replay_file(const char *path)
{
    size_t len = 0;
    char *err = NULL;
    char *p = util_read_file(path, 64 << 20, &len, &err);

    if (p == NULL) {
        fprintf(stderr, "replay: %s\n", err);
        free(err);
        return -1;
    }
    LLVMFuzzerTestOneInput((const uint8_t *)p, len);
    free(p);
    return 0;
}

int
main(int argc, char **argv)
{
    int passed = 0, failed = 0;

    for (int i = 1; i < argc; i++) {
        struct stat st;
        DIR *d;
        struct dirent *de;

        if (stat(argv[i], &st) == -1) {
            fprintf(stderr, "replay: %s: no such corpus\n", argv[i]);
            failed++;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            replay_file(argv[i]) == 0 ? passed++ : failed++;
            continue;
        }
        d = opendir(argv[i]);
        while (d != NULL && (de = readdir(d)) != NULL) {
            char *path;

            if (de->d_name[0] == '.') {
                continue;
            }
            path = xasprintf("%s/%s", argv[i], de->d_name);
            replay_file(path) == 0 ? passed++ : failed++;
            free(path);
        }
        if (d != NULL) {
            closedir(d);
        }
    }
    if (passed + failed == 0) {
        fprintf(stderr, "replay: empty corpus\n");
        failed = 1;
    }
    printf("fuzz replay: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
