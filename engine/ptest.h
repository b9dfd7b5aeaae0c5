/* ptest.h: playbook tests, `kagari playbook test` (docs/playbooks.md "Playbook tests"). */
#ifndef KAGARI_PTEST_H
#define KAGARI_PTEST_H

/* Run the tests of each path: a *_test.lua file, or a folder whose *_test.lua files are
 * run in name order. Prints one line per file (every check with verbose), a "not ok"
 * line with file:line for each failed check, and "playbook tests: N passed, N failed".
 * Returns the exit status: 0 when every check passed, else 1. */
int ptest_main(char **paths, int n, int verbose);

#endif
