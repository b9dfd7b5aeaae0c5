/* test_main.c: runs the TEST_LIST of the test file it is linked with. An optional
 * argument runs only the tests whose name contains it. */
#include "engine/registry.h"
#include "tests/unit/test.h"

#include "engine/util.h"

int test_failed_;

void
test_rm_tree(const char *dir)
{
    util_rm_tree(dir);
}

int
main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    const char *only = argc > 1 ? argv[1] : NULL;
    const char *name = strrchr(argv[0], '/');

    name = name ? name + 1 : argv[0];
    registry_init(); /* the connectors' settings blocks and modules, as the daemon has */
    for (const struct test_case *t = test_list_; t->name != NULL; t++) {
        if (only != NULL && strstr(t->name, only) == NULL) {
            continue;
        }
        test_failed_ = 0;
        t->fn();
        if (test_failed_) {
            fprintf(stderr, "not ok %s %s\n", name, t->name);
            failed++;
        } else {
            fprintf(stderr, "ok %s %s\n", name, t->name);
            passed++;
        }
    }
    printf("unit %s: %d passed, %d failed\n", name, passed, failed);
    return failed ? 1 : 0;
}
