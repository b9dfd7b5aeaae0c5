/* limiter.c: token buckets per key with a priority queue of waiters per key, woken by a
 * libevent timer on the engine's loop when the next token is due.
 *
 * A key has one or more buckets; a call takes one token from every bucket of its key.
 * Waiters are served in priority order (CONTAIN, NORMAL, ENRICH), first come first
 * served within a priority. Callbacks run only from the key's timer event, never from
 * limiter_acquire, limiter_refund or limiter_define. */
#include "connectors/limiter.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "engine/kagari.h"

#define LIMITER_NCHAINS 128
#define LIMITER_EPSILON 1e-9 /* float slack when comparing token counts with 1 */

struct limiter_bucket {
    double rate;  /* tokens per second (0: never refilled, only refunds) */
    double burst; /* capacity */
    double tokens;
    int64_t last_us; /* when tokens was last brought up to date */
    struct limiter_bucket *next;
};

struct limiter_key {
    char *name;
    struct limiter_bucket *buckets;
    struct limiter_wait *head, *tail; /* by priority, then arrival */
    size_t nwait;
    struct event *timer; /* created when the first caller has to wait */
    struct limiter_key *next;
};

struct limiter_wait {
    struct limiter_key *key;
    enum limiter_prio prio;
    void (*fn)(void *arg);
    void *arg;
    struct limiter_wait *prev, *next;
};

static struct {
    struct limiter_key *chains[LIMITER_NCHAINS];
    struct event_base *base; /* taken from loop_base() at first need */
    size_t nwait;
    unsigned gen; /* bumped by limiter_shutdown: a callback may have freed everything */
    int warned;
} lim;

static unsigned
key_hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s != '\0'; s++) {
        h = (h ^ (unsigned char)*s) * 16777619u;
    }
    return h % LIMITER_NCHAINS;
}

static struct limiter_key *
key_find(const char *name)
{
    for (struct limiter_key *k = lim.chains[key_hash(name)]; k != NULL; k = k->next) {
        if (strcmp(k->name, name) == 0) {
            return k;
        }
    }
    return NULL;
}

static struct limiter_key *
key_get(const char *name)
{
    struct limiter_key *k = key_find(name);
    unsigned h;

    if (k == NULL) {
        h = key_hash(name);
        k = xcalloc(1, sizeof(*k));
        k->name = xstrdup(name);
        k->next = lim.chains[h];
        lim.chains[h] = k;
    }
    return k;
}

/* Bring every bucket of k up to now. */
static void
refill(struct limiter_key *k, int64_t now)
{
    for (struct limiter_bucket *b = k->buckets; b != NULL; b = b->next) {
        if (now > b->last_us) {
            b->tokens += b->rate * (double)(now - b->last_us) / 1e6;
            if (b->tokens > b->burst) {
                b->tokens = b->burst;
            }
        }
        b->last_us = now;
    }
}

static int
tokens_ready(const struct limiter_key *k)
{
    for (const struct limiter_bucket *b = k->buckets; b != NULL; b = b->next) {
        if (b->tokens < 1.0 - LIMITER_EPSILON) {
            return 0;
        }
    }
    return 1;
}

static void
tokens_take(struct limiter_key *k)
{
    for (struct limiter_bucket *b = k->buckets; b != NULL; b = b->next) {
        b->tokens -= 1.0;
        if (b->tokens < 0) {
            b->tokens = 0;
        }
    }
}

/* Microseconds until every bucket of k holds a token (after refill), or -1 when some
 * bucket never refills. */
static int64_t
tokens_due_us(const struct limiter_key *k)
{
    double worst = 0;

    for (const struct limiter_bucket *b = k->buckets; b != NULL; b = b->next) {
        double need = 1.0 - b->tokens;

        if (need <= LIMITER_EPSILON) {
            continue;
        }
        if (b->rate <= 0) {
            return -1;
        }
        if (need / b->rate > worst) {
            worst = need / b->rate;
        }
    }
    return (int64_t)ceil(worst * 1e6) + 1;
}

static void wake_cb(evutil_socket_t fd, short what, void *arg);

/* 0 when there is an event loop to wait on (taken from loop_base() at first need). */
static int
have_base(void)
{
    if (lim.base == NULL) {
        lim.base = loop_base();
    }
    return lim.base != NULL ? 0 : -1;
}

/* Arm k's timer to fire after us microseconds (0: on the next loop pass). Returns -1
 * when there is no event loop to wait on. */
static int
arm(struct limiter_key *k, int64_t us)
{
    struct timeval tv;

    if (have_base() == -1) {
        return -1;
    }
    if (k->timer == NULL) {
        k->timer = evtimer_new(lim.base, wake_cb, k);
        if (k->timer == NULL) {
            return -1;
        }
    }
    tv.tv_sec = (time_t)(us / 1000000);
    tv.tv_usec = (suseconds_t)(us % 1000000);
    return evtimer_add(k->timer, &tv);
}

/* Serve k's queue: while the head waiter can have tokens, dequeue it and call it. The
 * callback may acquire, cancel, refund or even shut the limiter down; keys live until
 * shutdown, so k stays valid unless the generation changed. When tokens run out with
 * waiters left, the timer is armed for the next token. */
static void
serve(struct limiter_key *k)
{
    unsigned gen = lim.gen;

    while (k->head != NULL) {
        struct limiter_wait *w = k->head;
        void (*fn)(void *) = w->fn;
        void *arg = w->arg;
        int64_t due;

        refill(k, util_mono_us());
        if (!tokens_ready(k)) {
            due = tokens_due_us(k);
            if (due >= 0) {
                arm(k, due);
            }
            return;
        }
        tokens_take(k);
        k->head = w->next;
        if (k->head != NULL) {
            k->head->prev = NULL;
        } else {
            k->tail = NULL;
        }
        k->nwait--;
        lim.nwait--;
        free(w);
        fn(arg);
        if (gen != lim.gen) {
            return;
        }
    }
}

static void
wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    serve(arg);
}

/* Add a bucket to key, or, when the key already has a bucket with this rate, change
 * that bucket's burst (so a configuration applied twice does not stack buckets). A new
 * bucket starts full. Waiters are re-examined on the next loop pass. */
void
limiter_define(const char *key, double rate, double burst)
{
    struct limiter_key *k = key_get(key);
    struct limiter_bucket *b;

    if (rate < 0) {
        rate = 0;
    }
    if (burst < 1) {
        burst = 1;
    }
    for (b = k->buckets; b != NULL; b = b->next) {
        if (fabs(b->rate - rate) <= LIMITER_EPSILON * (rate > 1 ? rate : 1)) {
            break;
        }
    }
    if (b == NULL) {
        b = xcalloc(1, sizeof(*b));
        b->rate = rate;
        b->tokens = burst;
        b->last_us = util_mono_us();
        b->next = k->buckets;
        k->buckets = b;
    } else {
        refill(k, util_mono_us());
    }
    b->burst = burst;
    if (b->tokens > burst) {
        b->tokens = burst;
    }
    if (k->head != NULL) {
        arm(k, 0);
    }
}

/* Take a token from every bucket of key, or queue the caller (see limiter.h). A newcomer
 * only passes a non-empty queue when it has a better priority than its head: the
 * timer may not have served the queue yet although tokens are there. */
int
limiter_acquire(const char *key, enum limiter_prio prio, void (*fn)(void *arg), void *arg,
                struct limiter_wait **wp)
{
    struct limiter_key *k = key_find(key);
    struct limiter_wait *w, *at;
    int64_t due;

    if (wp != NULL) {
        *wp = NULL;
    }
    if (k == NULL || k->buckets == NULL) {
        return 0;
    }
    refill(k, util_mono_us());
    if (tokens_ready(k) && (k->head == NULL || prio < k->head->prio)) {
        tokens_take(k);
        return 0;
    }
    if (k->head == NULL) {
        /* The first waiter arms the timer for the next token (a bucket that never
         * refills waits for a refund). */
        due = tokens_due_us(k);
        if ((due >= 0 ? arm(k, due) : have_base()) == -1) {
            /* No event loop: nothing could ever wake a waiter. Let the call through. */
            if (!lim.warned) {
                log_warn("limiter.no_loop key=%s", log_quote(key));
                lim.warned = 1;
            }
            tokens_take(k);
            return 0;
        }
    }
    w = xcalloc(1, sizeof(*w));
    w->key = k;
    w->prio = prio;
    w->fn = fn;
    w->arg = arg;
    /* Insert after the last waiter of the same or a better priority. */
    for (at = k->tail; at != NULL && at->prio > prio; at = at->prev) {
    }
    w->prev = at;
    w->next = at != NULL ? at->next : k->head;
    if (w->next != NULL) {
        w->next->prev = w;
    } else {
        k->tail = w;
    }
    if (at != NULL) {
        at->next = w;
    } else {
        k->head = w;
    }
    k->nwait++;
    lim.nwait++;
    if (wp != NULL) {
        *wp = w;
    }
    return 1;
}

/* Remove a waiter whose callback has not run; w is freed. When the queue empties, the
 * timer is stopped. */
void
limiter_cancel(struct limiter_wait *w)
{
    struct limiter_key *k;

    if (w == NULL) {
        return;
    }
    k = w->key;
    if (w->prev != NULL) {
        w->prev->next = w->next;
    } else {
        k->head = w->next;
    }
    if (w->next != NULL) {
        w->next->prev = w->prev;
    } else {
        k->tail = w->prev;
    }
    k->nwait--;
    lim.nwait--;
    free(w);
    if (k->head == NULL && k->timer != NULL) {
        evtimer_del(k->timer);
    }
}

/* Give one token back to every bucket of key (capped at burst); waiters are served on
 * the next loop pass, not from here. */
void
limiter_refund(const char *key)
{
    struct limiter_key *k = key_find(key);

    if (k == NULL) {
        return;
    }
    refill(k, util_mono_us());
    for (struct limiter_bucket *b = k->buckets; b != NULL; b = b->next) {
        b->tokens += 1.0;
        if (b->tokens > b->burst) {
            b->tokens = b->burst;
        }
    }
    if (k->head != NULL) {
        arm(k, 0);
    }
}

size_t
limiter_waiting(const char *key)
{
    struct limiter_key *k;

    if (key == NULL) {
        return lim.nwait;
    }
    k = key_find(key);
    return k != NULL ? k->nwait : 0;
}

/* Free every key, bucket, waiter (their callbacks are not called) and timer. Must run
 * before the event base is freed; the next use takes loop_base() again. */
void
limiter_shutdown(void)
{
    for (size_t i = 0; i < LIMITER_NCHAINS; i++) {
        while (lim.chains[i] != NULL) {
            struct limiter_key *k = lim.chains[i];

            lim.chains[i] = k->next;
            while (k->head != NULL) {
                struct limiter_wait *w = k->head;

                k->head = w->next;
                free(w);
            }
            while (k->buckets != NULL) {
                struct limiter_bucket *b = k->buckets;

                k->buckets = b->next;
                free(b);
            }
            if (k->timer != NULL) {
                event_free(k->timer);
            }
            free(k->name);
            free(k);
        }
    }
    lim.base = NULL;
    lim.nwait = 0;
    lim.warned = 0;
    lim.gen++;
}
