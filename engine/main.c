/* main.c: the kagari command line (placeholder until cli lands). */
#include <stdio.h>

int
main(void)
{
    fprintf(stderr, "kagari: not built yet\n");
    return 1;
}
