/* test_loop.c: the loop's clock-step detection (the wall clock against the monotonic). */
#include "engine/loop.h"

#include "tests/unit/test.h"

static void
test_clock_steps(void)
{
    int64_t step = -1;
    int64_t wall = 1796400000000LL, mono = 5000000; /* ms since the epoch; us */

    loop_free();                                      /* forget any earlier baseline */
    T_EQ_INT(loop_clock_check(wall, mono, &step), 0); /* the baseline */
    /* both clocks advance together, with a little jitter: no step */
    T_EQ_INT(loop_clock_check(wall + 1000, mono + 1000000 + 300, &step), 0);
    T_EQ_INT(loop_clock_check(wall + 2500, mono + 2500000 - 900000, &step), 0); /* 0.9 s */
    /* the wall clock jumps 10 s forward */
    T_EQ_INT(loop_clock_check(wall + 13500, mono + 3500000, &step), 1);
    T_ASSERT(step >= 9000 && step <= 11000);
    /* then 5 s back */
    T_EQ_INT(loop_clock_check(wall + 9500, mono + 4500000, &step), 1);
    T_ASSERT(step <= -5000 && step >= -7000);
    /* and runs steadily again */
    T_EQ_INT(loop_clock_check(wall + 10500, mono + 5500000, &step), 0);
    T_EQ_INT(step, 0);
}

TEST_LIST = {
    { "clock_steps", test_clock_steps },
    { NULL, NULL },
};
