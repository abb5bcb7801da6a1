/*
 * SPDX-License-Identifier: MIT
 *
 * Promela model of SampleAllocator's concurrency protocol (allocators/src/sample_allocator.cpp,
 * rules 1-4 of its top comment; detail/sample_allocator_inline.hpp; event_count.hpp/.cpp).
 * Checked with SPIN by run.sh; README.md says what is covered and what is abstracted away.
 *
 * One committed pool of NS samples, NT worker threads and one control thread (decommit(), then
 * the destructor). Every atomic access of the C++ code is one Promela step (a d_step or atomic
 * block); plain local computation is folded into a neighbouring step. Sequentially consistent.
 *
 * Words. The 64-bit words are split into their fields:
 *   head_  = [counter | waiters flag | slot]  ->  hslot, hflag, hmov
 *   cache  = [counter | closed flag | slot+1]  ->  wslot[w], wclosed[w], wmov[w]
 *   EventCount::seq_                            ->  seqmov
 * The counters are abstracted exactly (a 43-bit counter does not wrap): bit t of *mov is clear
 * while thread t keeps a copy of the word that it may still CAS with and the counter has not
 * moved since it read it. A load that the thread may CAS from clears its bit, every write that
 * moves the counter sets all bits, and a thread sets its own bit again when its copy dies (which
 * keeps states that differ only in dead copies equal). A CAS succeeds iff the fields it expects
 * are the word's fields and its bit is clear, i.e. iff the whole 64-bit value, counter included,
 * is the one it read. Writes that keep the counter (push, park, reopen, the flag clearing,
 * decommit's swap) change only the fields, as in the code. A ticket is the same trick on seq_:
 * seq_ == ticket iff the taker's bit in seqmov is still clear.
 * The futex is `asleep` (a bit per thread): FUTEX_WAIT compares seq_ and queues atomically (the
 * kernel's bucket lock), FUTEX_WAKE(1) dequeues any one queued thread, FUTEX_WAKE(INT_MAX) all.
 *
 * Compile-time switches (spin -DNAME=value):
 *   NT, NS   worker threads (2 or 3), samples (1 or 2)
 *   ROUNDS   get/release rounds per thread; a thread may stop after any of them
 *   EARLY    1 (default): each run chooses at its start whether decommit() may come at any
 *            moment, concurrently with gets and releases, or only from the destructor;
 *            0: only from the destructor, once every get has returned
 *   TIMED    1: thread 0's gets have a deadline (get_slow's leave() path, timed futex wait)
 *   SPINS    1: get_slow's spin loop does one more try_pop (the code does up to 100)
 *   NOTIFY_CHECK 1 (default): push_free's wake_one() asserts that the allocator still exists
 *            (rule 4); 0 leaves that one check out, to check the rest of the model as it is
 *   FIX      1 (default, as the code is now; 0: as it was): the fix of the rule-1 race in
 *            push_free (see README): a pusher that read a
 *            head with the waiters flag registers in `notifiers` before its CAS and leaves after
 *            its wake-up; the destructor also waits for notifiers == 0
 *   NOPOOL_WAIT 1 (default, as the code is now; 0: as it was): the fix of the livelock in
 *            get_slow (see README): a waiter that finds
 *            current_ == &g_no_pool after announcing itself waits on its ticket instead of
 *            announcing again at once (decommit's notify_all follows its head swap)
 *   WAITER_REGISTERED 1: assert that a push that replaced a flagged head saw waiters_ != 0
 *
 * Properties (README.md has the details):
 *   (a)  no lost wake-up: pan's invalid end states. Scripts are bounded and every worker may stop
 *        after any round, so a sleeper nobody wakes ends the run in a state where it, and the
 *        destructor waiting for its get, are blocked.
 *   (a') sharper, checked when a thread queues on the futex: no sample is free (on the list or
 *        parked) unless a wake-up is already bound to come (pend > 0).
 *   (b)  every sample is in exactly one place (ghost where[]): every hand-out takes it from where
 *        the data says it is, the list from head_ is exactly the W_LIST samples, decommit counts
 *        each free one once, releases count out the others, outstanding never goes below 0, and
 *        the destructor finds each sample counted once.
 *   (c)  rule 4: `destroyed` is set when the destructor returns; every access of a worker to the
 *        allocator asserts it is not (ALIVE, and NOTIFY_ALIVE for push_free's wake_one()).
 */

#ifndef NT
#define NT 2
#endif
#ifndef NS
#define NS 1
#endif
#ifndef ROUNDS
#define ROUNDS 2
#endif
#ifndef EARLY
#define EARLY 1
#endif
#ifndef TIMED
#define TIMED 0
#endif
#ifndef SPINS
#define SPINS 0
#endif
#ifndef NOTIFY_CHECK
#define NOTIFY_CHECK 1
#endif
#ifndef FIX
#define FIX 1
#endif
#ifndef NOPOOL_WAIT
#define NOPOOL_WAIT 1
#endif
#ifndef WAITER_REGISTERED
#define WAITER_REGISTERED 0
#endif

#if NOTIFY_CHECK
#define NOTIFY_ALIVE assert(!destroyed)
#else
#define NOTIFY_ALIVE skip
#endif
#define ALIVE assert(!destroyed)      /* every access of a worker to the allocator's memory */

#define NW    (NT + 1)           /* cache words: word 0 shared at first, thread t moves to t+1 */
#define CTRL  NT                 /* the control thread's bit in the *mov masks */
#define ALLB  ((1 << (NT + 1)) - 1)
#define B(t)  (1 << (t))
#define DECOM 6                  /* kDecommittedSlot */
#define EMPTY 7                  /* kEmptySlot */
#define NONE  255

/* head_ and cache-word copies: see the top comment */
#define KEEP_H   hmov = hmov & ~B(me)
#define DROP_H   hmov = hmov | B(me)
#define CAS_H    (hslot == es && hflag == ef && !(hmov & B(me)))
#define KEEP_W(x) wmov[x] = wmov[x] & ~B(me)
#define DROP_W(x) wmov[x] = wmov[x] | B(me)
#define CAS_W(x) (wslot[x] == ws && wclosed[x] == wc && !(wmov[x] & B(me)))

/* where a sample is (ghost) */
#define W_LIST    1              /* on the free list (reachable from head_, or detached by decommit) */
#define W_PARKED  2              /* in cache word pw[s] */
#define W_HELD    3              /* handed out to thread holder[s] */
#define W_COUNTED 4              /* counted free by decommit */
#define W_OUT     5              /* counted out of the retired pool by its release */

/* ---- the allocator ---- */
byte hslot = 0;                  /* commit() leaves 0 -> 1 -> ... -> EMPTY on the list */
bit  hflag = 0;
byte hmov = ALLB;
byte nxt[NS];                    /* SampleHeader::next */
byte wslot[NW];                  /* 0: empty, else sample + 1 */
bit  wclosed[NW];
byte wmov[NW];
byte waiters = 0;                /* waiters_ */
bit  retired = 0;                /* pool->retired */
bit  curpool = 1;                /* current_: 1 the pool, 0 g_no_pool */
short outstanding = NS;          /* pool->outstanding */
byte live_retired = 0;           /* live_retired_ */
bit  drained = 0;                /* pool->drained */
byte seqmov = ALLB;              /* EventCount::seq_ */
byte sleepers = 0;               /* EventCount::sleepers_ */
byte asleep = 0;                 /* threads queued on the futex word */
#if FIX
byte notifiers = 0;              /* the fix: pushers that may still wake a waiter */
#endif

/* ---- ghosts ---- */
bit  destroyed = 0;              /* the destructor has returned: the allocator is gone */
byte where[NS];
byte pw[NS];                     /* W_PARKED: which word */
byte holder[NS];                 /* W_HELD: which thread */
bit  early = 0;                  /* this run calls decommit() while gets may still run */
byte gets_done = 0;              /* threads past their last get (no get runs with the destructor) */
byte pend = 0;                   /* wake-ups bound to come, whose seq_ += 1 has not happened yet: a
                                    push that replaced a flagged head, a leave() that saw a sample,
                                    decommit's notify_all once it has set current_ to g_no_pool */

/* ---------------------------------------------------------------------------------------------
 * Helpers; they use the calling process's locals me, k, c.
 */

/* The free list reachable from head_ holds exactly the samples marked W_LIST, once each. */
inline check_list() {
    k = hslot; c = 0;
    do
    :: k < NS -> assert(where[k] == W_LIST); c++; assert(c <= NS); k = nxt[k]
    :: else -> break
    od;
    k = 0;
    do
    :: k < NS -> if :: where[k] == W_LIST -> c-- :: else -> skip fi; k++
    :: else -> break
    od;
    assert(c == 0);
    k = 0
}

/* c = samples free in the committed pool (on the list or parked) */
inline count_free() {
    c = 0; k = 0;
    do
    :: k < NS -> if :: where[k] == W_LIST || where[k] == W_PARKED -> c++ :: else -> skip fi; k++
    :: else -> break
    od;
    k = 0
}

inline move_cache_slot() {
    if :: myw == 0 -> myw = me + 1 :: else -> skip fi
}

/* FUTEX_WAKE(1): any one queued thread */
inline futex_wake_one() {
    if
    :: (asleep & 1) -> asleep = asleep & ~1
    :: (asleep & 2) -> asleep = asleep & ~2
    :: (asleep & 4) -> asleep = asleep & ~4
    :: (asleep == 0) -> skip
    fi
}

/* wake_one() = EventCount::notify_one() from a worker; every step touches the allocator's wake_ */
inline notify_one() {
    d_step { NOTIFY_ALIVE; seqmov = ALLB; pend-- };                 /* seq_.fetch_add(1) */
    d_step { NOTIFY_ALIVE; c = sleepers };                          /* sleepers_.load() */
    if
    :: c != 0 -> c = 0; atomic { NOTIFY_ALIVE; futex_wake_one() }  /* futex(&seq_, FUTEX_WAKE, 1) */
    :: else -> skip
    fi
}

/* try_pop: sets h to the sample popped, or why (0 empty, 1 decommitted) */
inline try_pop() {
    d_step {
        ALIVE; es = hslot; ef = hflag;
        if :: es < DECOM -> KEEP_H :: else -> why = (es == DECOM -> 1 : 0) fi
    };
    do
    :: es >= DECOM -> break
    :: else ->
        d_step { ALIVE; n = nxt[es] };                               /* racy: the CAS validates it */
        d_step {
            ALIVE;
            if
            :: CAS_H ->
                hslot = n; hmov = ALLB;                               /* the counter moves */
                assert(where[es] == W_LIST);                          /* (b): never handed out twice */
                where[es] = W_HELD; holder[es] = me; h = es;
                check_list()
            :: else ->
                es = hslot; ef = hflag;
                if :: es < DECOM -> KEEP_H :: else -> DROP_H; why = (es == DECOM -> 1 : 0) fi
            fi;
            n = 0
        };
        if :: h != NONE -> break :: else -> skip fi
    od;
    es = 0; ef = 0
}

/* stop_waiting (rule 2): the last waiter clears the head's flag unless someone announced since */
inline stop_waiting() {
    d_step { ALIVE; waiters--; c = waiters; seqmov = seqmov | B(me) /* the ticket is dead */ };
    if
    :: c != 0 -> c = 0
    :: else ->
        d_step { ALIVE; es = hslot; ef = hflag; if :: ef -> KEEP_H :: else -> skip fi };
        do
        :: !ef -> break
        :: else ->
            d_step { ALIVE; c = waiters; if :: c != 0 -> DROP_H :: else -> skip fi };
            if
            :: c != 0 -> c = 0; break
            :: else ->
                d_step {
                    ALIVE;
                    if
                    :: CAS_H -> hflag = 0; DROP_H; ok = 1
                    :: else -> es = hslot; ef = hflag; if :: ef -> KEEP_H :: else -> DROP_H fi; ok = 0
                    fi
                };
                if :: ok -> ok = 0; break :: else -> skip fi
            fi
        od;
        es = 0; ef = 0
    fi
}

/* ---------------------------------------------------------------------------------------------
 * A worker: up to ROUNDS rounds of get_buffer() and then reset() of what it got. It decides at
 * each get whether that get is its last one (gets_done), before the release, so the destructor
 * may run while its last release is still under way, as it may in a program.
 */
proctype Worker(byte me) {
    byte myw = 0;        /* detail::cache_offset */
    byte h = NONE;       /* the sample held */
    byte r = 0;
    bit  last = 0;
    byte why = 0;        /* try_pop: 0 empty, 1 decommitted */
    byte es = 0; bit ef = 0; byte n = 0;    /* a copy of head_ */
    byte w = 0; byte ws = 0; bit wc = 0;    /* a copy of a cache word */
    bit  cur = 0; bit ok = 0; bit flagrep = 0; bit rr = 0;
    byte k = 0; byte c = 0;
#if FIX
    bit  reg = 0;
#endif

    do
    :: r < ROUNDS ->
        r++;
        /* ================= get_buffer() -> get_fast ================= */
        /* take_cached */
        d_step { ALIVE; cur = curpool };
        if
        :: cur ->
            d_step { ALIVE; ws = wslot[myw]; wc = wclosed[myw]; if :: ws != 0 -> KEEP_W(myw) :: else -> skip fi };
            if
            :: ws != 0 ->
                d_step {
                    ALIVE;
                    if
                    :: CAS_W(myw) ->
                        wslot[myw] = 0; wmov[myw] = ALLB;
                        h = ws - 1; assert(where[h] == W_PARKED && pw[h] == myw);
                        where[h] = W_HELD; holder[h] = me; pw[h] = 0
                    :: else -> DROP_W(myw)
                    fi;
                    ws = 0; wc = 0
                };
                if :: h == NONE -> move_cache_slot() :: else -> skip fi
            :: else -> wc = 0
            fi
        :: else -> skip                      /* g_no_pool: its words are always empty */
        fi;
        cur = 0;
        if :: h == NONE -> try_pop() :: else -> skip fi;
        if :: h != NONE -> goto got :: else -> skip fi;

        /* ================= get_slow ================= */
        try_pop();
        if
        :: h != NONE -> goto got
        :: why == 1 -> goto refused
        :: else -> skip
        fi;
        /* steal_cached */
        d_step { ALIVE; cur = curpool };
        if
        :: cur ->
            do
            :: w < NW ->
                d_step { ALIVE; ws = wslot[w]; wc = wclosed[w]; if :: ws != 0 -> KEEP_W(w) :: else -> skip fi };
                do
                :: ws == 0 -> break
                :: else ->
                    d_step {
                        ALIVE;
                        if
                        :: CAS_W(w) ->
                            wslot[w] = 0; wmov[w] = ALLB;
                            h = ws - 1; assert(where[h] == W_PARKED && pw[h] == w);
                            where[h] = W_HELD; holder[h] = me; pw[h] = 0; ws = 0
                        :: else ->
                            ws = wslot[w]; wc = wclosed[w];
                            if :: ws != 0 -> KEEP_W(w) :: else -> DROP_W(w) fi
                        fi
                    }
                od;
                wc = 0;
                if :: h != NONE -> break :: else -> w++ fi
            :: else -> break
            od;
            w = 0
        :: else -> skip
        fi;
        cur = 0;
        if :: h != NONE -> goto got :: else -> skip fi;
#if SPINS
        try_pop();
        if
        :: h != NONE -> goto got
        :: why == 1 -> goto refused
        :: else -> skip
        fi;
#endif
        d_step { ALIVE; waiters++ };                                  /* (b) of rule 2 */
        do
        :: d_step { ALIVE; seqmov = seqmov & ~B(me) };               /* (a): ticket = prepare_wait() */
            d_step { ALIVE; es = hslot; ef = hflag; if :: es == EMPTY -> KEEP_H :: else -> skip fi };
            if
            :: es == DECOM -> es = 0; ef = 0; stop_waiting(); goto refused
            :: es < DECOM ->
                es = 0; ef = 0;
                try_pop();
                if :: h != NONE -> stop_waiting(); goto got :: else -> skip fi
            :: es == EMPTY ->
                /* (c): announce in the head, moving its counter */
                d_step {
                    ALIVE;
                    if
                    :: CAS_H -> hflag = 1; hmov = ALLB; ok = 1
                    :: else -> DROP_H; ok = 0
                    fi;
                    es = 0; ef = 0
                };
                if
                :: !ok -> skip                                       /* look again */
                :: else ->
                    ok = 0;
                    d_step { ALIVE; cur = curpool };
                    if
#if NOPOOL_WAIT
                    :: !cur -> goto closed                           /* decommit's notify_all is to come */
#else
                    :: !cur -> skip                                  /* decommitted since: look again */
#endif
                    :: else ->
                        cur = 0;
                        /* close_caches (rule 3) */
                        do
                        :: w < NW ->
                            d_step { ALIVE; ws = wslot[w]; wc = wclosed[w]; KEEP_W(w) };
                            do
                            :: d_step {
                                   ALIVE;
                                   if
                                   :: CAS_W(w) ->
                                       wslot[w] = 0; wclosed[w] = 1; wmov[w] = ALLB; ok = 1;
                                       if
                                       :: ws != 0 ->
                                           h = ws - 1; assert(where[h] == W_PARKED && pw[h] == w);
                                           where[h] = W_HELD; holder[h] = me; pw[h] = 0
                                       :: else -> skip
                                       fi;
                                       ws = 0; wc = 0
                                   :: else -> ws = wslot[w]; wc = wclosed[w]; KEEP_W(w); ok = 0
                                   fi
                               };
                               if :: ok -> ok = 0; break :: else -> skip fi
                            od;
                            if :: h != NONE -> break :: else -> w++ fi
                        :: else -> break
                        od;
                        w = 0;
                        if :: h != NONE -> stop_waiting(); goto got :: else -> skip fi;
closed:
                        cur = 0;
#if TIMED
                        if
                        :: me == 0 ->
                            if
                            :: skip
                            :: /* the deadline has passed: leave(Errc::timeout) */
                               stop_waiting();
                               d_step {
                                   ALIVE;
                                   if :: (hslot < DECOM && hflag) -> ok = 1; pend++ :: else -> ok = 0 fi
                               };
                               if :: ok -> ok = 0; notify_one() :: else -> skip fi;
                               goto decide
                            fi
                        :: else -> skip
                        fi;
#endif
                        /* wake_.wait(ticket) */
                        d_step { ALIVE; sleepers++ };                 /* (a) of the Dekker pairing */
                        d_step {
                            ALIVE;
                            if
                            :: !(seqmov & B(me)) ->                   /* (b): seq_ == ticket: sleep */
                                /* (a'): nobody falls asleep while a sample is free unless a
                                   wake-up is already on its way */
                                count_free(); assert(c == 0 || pend > 0); c = 0;
                                asleep = asleep | B(me)
                            :: else -> skip
                            fi;
                            seqmov = seqmov | B(me)                  /* the ticket is used */
                        };
#if TIMED
                        if
                        :: me == 0 -> atomic { asleep = asleep & ~B(me) }   /* timed out (or woken) */
                        :: else -> (!(asleep & B(me)))
                        fi;
#else
                        (!(asleep & B(me)));                         /* asleep until woken */
#endif
                        d_step { ALIVE; sleepers-- }
                    fi
                fi
            fi
        od;

refused:
        /* not_committed: nothing held, and every later get would say the same */
        skip;
        d_step { gets_done++; r = ROUNDS; last = 1 };
        break;

got:
        skip;
        assert(h != NONE && where[h] == W_HELD && holder[h] == me);
decide:
        atomic {
            if
            :: r == ROUNDS -> last = 1
            :: r < ROUNDS -> last = 1
            :: r < ROUNDS -> last = 0
            fi;
            if :: last -> gets_done++ :: else -> skip fi
        };
        if :: h == NONE -> goto next :: else -> skip fi;

        /* ================= SampleRef::reset(): refs == 1, try_park ================= */
        d_step {
            ALIVE; ws = wslot[myw]; wc = wclosed[myw];
            if :: (ws == 0 && !wc) -> KEEP_W(myw) :: else -> skip fi
        };
        if
        :: (ws == 0 && !wc) ->
            d_step {
                ALIVE;
                if
                :: CAS_W(myw) ->
                    wslot[myw] = h + 1; DROP_W(myw);                  /* the sample is free now */
                    assert(where[h] == W_HELD && holder[h] == me);
                    where[h] = W_PARKED; pw[h] = myw; holder[h] = 0; h = NONE
                :: else -> DROP_W(myw)
                fi
            };
            if :: h == NONE -> goto next :: else -> move_cache_slot() fi
        :: else -> skip
        fi;
        ws = 0; wc = 0;

        /* ================= release_slow -> park_reopening ================= */
        d_step { ALIVE; ws = wslot[myw]; wc = wclosed[myw]; if :: ws == 0 -> KEEP_W(myw) :: else -> skip fi };
        if
        :: ws != 0 -> goto push
        :: else -> skip
        fi;
        if
        :: wc ->
            d_step { ALIVE; c = retired; if :: c -> DROP_W(myw) :: else -> skip fi };
            if :: c -> goto push :: else -> skip fi;
            /* pool->checked: false; get_extras_ & kLedgerBit: off (see README) */
            d_step { ALIVE; c = waiters; if :: c != 0 -> DROP_W(myw) :: else -> skip fi };
            if :: c != 0 -> goto push :: else -> skip fi
        :: else -> skip
        fi;
        d_step {
            ALIVE;
            if
            :: CAS_W(myw) ->
                wslot[myw] = h + 1; wclosed[myw] = 0; DROP_W(myw);   /* the sample is free now */
                assert(where[h] == W_HELD && holder[h] == me);
                where[h] = W_PARKED; pw[h] = myw; holder[h] = 0; h = NONE
            :: else -> DROP_W(myw)
            fi
        };
        if :: h == NONE -> goto next :: else -> move_cache_slot() fi;

push:
        /* ================= push_free ================= */
        skip;
        d_step {
            ALIVE; ws = 0; wc = 0; c = 0;
            es = hslot; ef = hflag; if :: es != DECOM -> KEEP_H :: else -> skip fi
        };
        do
        :: es == DECOM -> rr = 1; break
        :: else ->
            d_step { ALIVE; c = retired; if :: c -> DROP_H :: else -> skip fi };
            if :: c -> c = 0; rr = 1; break :: else -> skip fi;
#if FIX
            if
            :: ef && !reg -> d_step { ALIVE; notifiers++ }; reg = 1
            :: !ef && reg -> d_step { ALIVE; notifiers-- }; reg = 0
            :: else -> skip
            fi;
#endif
            d_step { ALIVE; nxt[h] = es };
            d_step {
                ALIVE;
                if
                :: CAS_H ->
                    hslot = h; DROP_H;                                /* the sample is free now */
                    assert(where[h] == W_HELD && holder[h] == me);
                    where[h] = W_LIST; holder[h] = 0; h = NONE;
                    check_list();
#if WAITER_REGISTERED
                    assert(!ef || waiters > 0);
#endif
                    if :: ef -> pend++ :: else -> skip fi;
                    flagrep = ef; ok = 1
                :: else ->
                    es = hslot; ef = hflag; if :: es != DECOM -> KEEP_H :: else -> DROP_H fi; ok = 0
                fi
            };
            if :: ok -> break :: else -> skip fi
        od;
        es = 0; ef = 0; ok = 0;
        if
        :: rr ->
            rr = 0;
#if FIX
            if :: reg -> d_step { ALIVE; notifiers-- }; reg = 0 :: else -> skip fi;
#endif
            /* return_retired */
            d_step {
                ALIVE; assert(retired);
                assert(where[h] == W_HELD && holder[h] == me);
                where[h] = W_OUT; holder[h] = 0; h = NONE;
                outstanding--; c = (outstanding == 0);                /* the sample is counted out now */
                assert(outstanding >= 0)
            };
            if
            :: c ->
                c = 0;
                d_step { ALIVE; drained = 1 };
                d_step { ALIVE; live_retired-- }                      /* hand_over: the reclaimer's decrement */
            :: else -> skip
            fi
        :: else ->
            /* the replaced head had the waiters flag: wake one */
            if :: flagrep -> flagrep = 0; notify_one() :: else -> skip fi;
#if FIX
            if :: reg -> d_step { ALIVE; notifiers-- }; reg = 0 :: else -> skip fi;
#endif
            skip
        fi;

next:
        if :: last -> break :: else -> skip fi
    :: else -> break
    od
}

/* ---------------------------------------------------------------------------------------------
 * The control thread: decommit() at any moment (EARLY) or only from the destructor; then the
 * destructor: once every get has returned, decommit() (a no-op when done already), wait for
 * live_retired_ == 0, and the allocator is gone.
 */
proctype Control() {
    byte me = CTRL;
    byte es = 0; bit ef = 0;
    byte w = 0; byte ws = 0; bit wc = 0;
    bit  ok = 0;
    byte fc = 0;             /* free_count */
    byte k = 0; byte c = 0;

    /* early is chosen once, at the start: were decommit() free to start at any moment in every
       run, its notify_all would always be a way out of a lost wake-up and no run would deadlock.
       With early == 0 nothing wakes a sleeper but the protocol itself. */
    if
    :: early -> skip                    /* decommit() now, concurrently with gets and releases */
    :: (gets_done == NT)                /* decommit() only from the destructor */
    fi;
    /* ================= decommit() ================= */
    d_step { live_retired++ };
    d_step { retired = 1 };
    d_step { curpool = 0; pend++ /* from here on, notify_all below is bound to come */ };
    d_step { es = hslot; ef = hflag; KEEP_H };
    do
    :: d_step {
           if
           :: CAS_H -> hslot = DECOM; DROP_H; ok = 1                /* the flag and the counter stay */
           :: else -> es = hslot; ef = hflag; KEEP_H; ok = 0
           fi
       };
       if :: ok -> ok = 0; break :: else -> skip fi
    od;
    skip;
    /* the detached free list is ours */
    d_step {
        k = es; c = 0;
        do
        :: k < NS -> assert(where[k] == W_LIST); where[k] = W_COUNTED; fc++; c++; assert(c <= NS); k = nxt[k]
        :: else -> break
        od;
        k = 0;
        do
        :: k < NS -> assert(where[k] != W_LIST); k++
        :: else -> break
        od;
        k = 0; c = 0; es = 0; ef = 0
    };
    /* close every cache word for good, taking what is parked there */
    do
    :: w < NW ->
        d_step { ws = wslot[w]; wc = wclosed[w]; KEEP_W(w) };
        do
        :: d_step {
               if
               :: CAS_W(w) ->
                   wslot[w] = 0; wclosed[w] = 1; wmov[w] = ALLB; ok = 1;
                   if
                   :: ws != 0 -> assert(where[ws - 1] == W_PARKED && pw[ws - 1] == w);
                                 where[ws - 1] = W_COUNTED; pw[ws - 1] = 0; fc++
                   :: else -> skip
                   fi;
                   ws = 0; wc = 0
               :: else -> ws = wslot[w]; wc = wclosed[w]; KEEP_W(w); ok = 0
               fi
           };
           if :: ok -> ok = 0; break :: else -> skip fi
        od;
        w++
    :: else -> break
    od;
    w = 0;
    /* notify_all */
    d_step { seqmov = ALLB; pend-- };
    d_step { c = sleepers };
    if :: c != 0 -> c = 0; d_step { asleep = 0 } :: else -> skip fi;
    if
    :: fc > 0 ->
        d_step { outstanding = outstanding - fc; c = (outstanding == 0); assert(outstanding >= 0); fc = 0 };
        if
        :: c -> c = 0; d_step { drained = 1 }; d_step { live_retired-- }
        :: else -> skip
        fi
    :: else -> skip
    fi;
    /* ================= ~SampleAllocator() ================= */
    (gets_done == NT);
    (live_retired == 0);
#if FIX
    (notifiers == 0);
#endif
    d_step {
        destroyed = 1;
        /* (b): after decommit every sample was counted exactly once */
        assert(outstanding == 0 && drained);
        k = 0;
        do
        :: k < NS -> assert(where[k] == W_COUNTED || where[k] == W_OUT); k++
        :: else -> break
        od;
        k = 0;
        /* every get has returned: no waiter announced or asleep, the flag cleared */
        assert(waiters == 0 && asleep == 0 && hflag == 0)
    }
}

init {
    byte i = 0;
    atomic {
        do
        :: i < NS ->
            nxt[i] = (i + 1 < NS -> i + 1 : EMPTY);
            where[i] = W_LIST;
            i++
        :: else -> break
        od;
        i = 0;
        do
        :: i < NW -> wmov[i] = ALLB; i++
        :: else -> break
        od;
        i = 0;
        do
        :: i < NT -> run Worker(i); i++
        :: else -> break
        od;
        i = 0;
#if EARLY
        if :: early = 1 :: early = 0 fi;
#endif
        run Control()
    }
}
