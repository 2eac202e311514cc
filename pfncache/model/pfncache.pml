/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pfncache.pml - Promela model of kvmmu's gfn_to_pfn_cache refresh protocol
 * (issue 11, "Proof"). See README.md in this directory for what is modelled,
 * what is abstracted and how scripts/spin-check.sh runs it.
 *
 * Variants (pick at most one; default is kvmmu's protocol):
 *   -DBASELINE              upstream's rule: retry while ANY invalidation is in
 *                           flight in the VM or the VM-wide sequence moved
 *   -DBROKEN_NO_FLAG_CHECK  kvmmu's refresh, but it publishes without looking
 *                           at needs_inval (must violate CHECK_READ)
 *   -DBROKEN_NO_INFLIGHT    kvmmu's refresh, but it clears needs_inval without
 *                           checking/waiting for overlapping in-flight ranges
 *                           (must violate CHECK_PUBLISH)
 *   -DBROKEN_WAKE_EARLY     invalidate_range_end wakes the queue before it
 *                           retires the range (with -DNO_UNRELATED, must lose
 *                           a wakeup: a non-progress cycle)
 *   -DNO_UNRELATED          no unrelated invalidations (so no wakeup from them
 *                           can hide a lost one)
 * Properties (pick for the run):
 *   -DCHECK_READ      assert: a reader that passes check() uses the current
 *                     page, and no overlapping window is open
 *   -DCHECK_PUBLISH   assert: refresh never publishes inside a window of an
 *                     overlapping range, and publishes the current page
 *   progress          compile pan with -DNP, run -l -f: every weakly fair
 *                     infinite run passes the progress label (a refresh
 *                     completes) infinitely often
 * Bounds: -DNA=n overlapping invalidations (default 3), -DNG=n memslot
 * generation changes (default 2). Unrelated invalidations are unbounded.
 */

#ifndef NA
#define NA 3
#endif
#ifndef NG
#define NG 2
#endif

/* hva ranges: H0 and H1 are the two places the memslot can put the cache's
 * gpa (the cache's range is one of them at a time); RB never overlaps. */
#define H0 0
#define H1 1
#define RB 2

/* host */
byte host[2];     /* version of the page each cache-side range maps */
bit  win[2];      /* an invalidate_range_start of the range has returned and
                   * its invalidate_range_end has not yet retired it */

/* VM */
byte infl[3];     /* invalidation tracker: in-flight ranges, per range */
bit  sleeping;    /* the refresher is on the wait queue and not yet woken */
bit  moved;       /* baseline: the VM-wide sequence moved since the snapshot
                   * (exact abstraction of seq != snapshot for one refresher) */
byte slot_gen;    /* memslot generation */
bit  slot_hva;    /* where the memslot maps the cache's gpa: H0 or H1 */

/* the cache */
bit  c_valid;
bit  c_ninv;      /* needs_inval */
byte c_pfn;       /* the page published (a host version) */
bit  c_hva;       /* the cache's hva range (what the invalidation walk sees) */
byte c_gen;       /* memslot generation the mapping was made under */

/*
 * Locks. mmu_lock and the cache lock are rwlocks that serve waiters in
 * arrival order (Linux's qrwlock queues contended lockers FIFO; where
 * mmu_lock is a spinlock it is a fair queued lock too). Each is modelled as
 * its state (readers, writer) plus a FIFO of waiting process ids: a locker
 * queues, and may take the lock only from the head of the queue. An unfair
 * lock would let the model starve a waiter forever under weak fairness (a
 * waiter is enabled only now and then), which is a property of the lock, not
 * of the protocol. At most 3 processes use each lock.
 */
typedef rwlock { byte r; bit w };
rwlock mmu, cl;			/* mmu_lock, the cache's lock */
chan mmu_q = [3] of { byte };
chan cl_q = [3] of { byte };

#define MYTURN(q) q?[eval(_pid)]
inline read_lock(l, q)    { q!_pid; atomic { MYTURN(q) && !l.w -> q?_; l.r++ } }
inline read_unlock(l)     { l.r-- }
inline write_lock(l, q)   { q!_pid; atomic { MYTURN(q) && !l.w && l.r == 0 -> q?_; l.w = 1 } }
inline write_unlock(l)    { l.w = 0 }
/* a writer critical section with nothing blocking inside: one step once
 * the writer is at the head of the queue and the lock is free */
#define WRITE_SECTION(l, q, body) q!_pid; atomic { MYTURN(q) && !l.w && l.r == 0 -> q?_; body }

/* Invalidations of the cache's possible ranges: finitely many (NA), each on
 * H0 or H1, chosen at the time, so they may or may not overlap the cache. */
proctype InvCache()
{
	byte n = 0;
	bit r;
	do
	:: n < NA ->
		if
		:: r = H0
		:: r = H1
		fi;
		/* invalidate_range_start(r) */
		write_lock(mmu, mmu_q);
		infl[r]++;
		write_lock(cl, cl_q);			/* walk: the caches overlapping r */
		if
		:: c_hva == r -> c_valid = 0; c_ninv = 1
		:: else -> skip
		fi;
		write_unlock(cl);
		atomic { write_unlock(mmu); win[r] = 1 }	/* start returns */
		/* only now may the host free the old page and map another */
		host[r]++;
		/* invalidate_range_end(r) */
#ifdef BROKEN_WAKE_EARLY
		sleeping = 0;			/* wake_up(&wq), too early */
#endif
		WRITE_SECTION(mmu, mmu_q, infl[r]--; win[r] = 0; moved = 1);
#ifndef BROKEN_WAKE_EARLY
		sleeping = 0;			/* wake_up(&wq) */
#endif
		n++
	:: else -> break
	od
}

/* Unrelated invalidations: an unbounded stream on RB. No cache overlaps RB,
 * so the walk touches no cache and each hook's critical section under
 * mmu_lock is one step once the hook's turn comes. */
proctype InvUnrelated()
{
	do
	:: /* invalidate_range_start(RB) */
	   WRITE_SECTION(mmu, mmu_q, infl[RB]++);
	   /* the host changes RB's pages here: nothing the cache sees */
	   /* invalidate_range_end(RB) */
	   WRITE_SECTION(mmu, mmu_q, infl[RB]--; moved = 1);
	   sleeping = 0						/* wake_up */
	od
}

/* Memslot updates: NG times, move the cache's gpa to the other hva range and
 * bump the generation (a new memslots array published under SRCU). */
proctype Memslot()
{
	byte n = 0;
	do
	:: n < NG -> atomic { slot_gen++; slot_hva = 1 - slot_hva }; n++
	:: else -> break
	od
}

/* Readers: check() and use under the cache read lock, forever. The use is two
 * steps (first and last touch) so a page change in between is caught too. */
proctype Reader()
{
	bit ok, r;
	byte p;
	do
	:: read_lock(cl, cl_q);
	   atomic {
		ok = c_valid && c_gen == slot_gen;	/* check() */
		p = c_pfn;
		r = c_hva;
#ifdef CHECK_READ
		assert(!ok || (!win[r] && p == host[r]))
#endif
	   };
	   atomic {
#ifdef CHECK_READ
		assert(!ok || (!win[r] && p == host[r]));
#endif
		read_unlock(cl);
		ok = 0; p = 0; r = 0
	   }
	od
}

/* refresh(), serialised per cache: this one process makes every refresh. It
 * refreshes forever; each completed refresh passes a progress label. */
proctype Refresher()
{
	byte g, pfn;
	bit h;
	do
	:: atomic { g = slot_gen; h = slot_hva };	/* gpa -> hva (SRCU) */
	   write_lock(cl, cl_q);
	   if
	   :: c_hva != h -> c_hva = h; c_valid = 0
	   :: else -> skip
	   fi;
	   write_unlock(cl);
	   do
	   :: /* one attempt */
#ifdef BASELINE
		moved = 0;			/* snapshot = VM-wide sequence */
		pfn = host[h];			/* lookup */
		read_lock(mmu, mmu_q);
		write_lock(cl, cl_q);
		if
		:: infl[H0] + infl[H1] + infl[RB] > 0 || moved ->
			write_unlock(cl); read_unlock(mmu); pfn = 0
			/* retry (busy) */
		:: else ->
			break
		fi
#else
		read_lock(mmu, mmu_q);
#ifndef BROKEN_NO_INFLIGHT
		if
		:: infl[h] > 0 ->
			read_unlock(mmu);
			/* wait_event(wq, !infl[h]) */
			do
			:: sleeping = 1;		/* prepare_to_wait */
			   if
			   :: infl[h] == 0 -> sleeping = 0; break
			   :: else -> (sleeping == 0)	/* schedule() until woken */
			   fi
			od
			/* continue: the next attempt re-checks under mmu_lock */
		:: else ->
#endif
			write_lock(cl, cl_q);
			c_ninv = 0;
			write_unlock(cl);
			read_unlock(mmu);
			pfn = host[h];		/* lookup: interleaves with anything */
			write_lock(cl, cl_q);
#ifndef BROKEN_NO_FLAG_CHECK
			if
			:: c_ninv -> write_unlock(cl); pfn = 0	/* retry */
			:: else -> break
			fi
#else
			break
#endif
#ifndef BROKEN_NO_INFLIGHT
		fi
#endif
#endif
	   od;
	   /* publish, holding the cache write lock */
#ifdef CHECK_PUBLISH
	   assert(!win[h] && pfn == host[h]);
#endif
	   c_pfn = pfn;
	   c_gen = g;
	   c_valid = 1;
	   write_unlock(cl);
#ifdef BASELINE
	   read_unlock(mmu);
#endif
progress_refresh_done:
	   pfn = 0; g = 0; h = 0
	od
}

init
{
	atomic {
		/* the cache starts inactive-equivalent: not valid, on H0, gen 0 */
		run InvCache();
#ifndef NO_UNRELATED
		run InvUnrelated();
#endif
		run Memslot();
		run Reader();
		run Refresher()
	}
}
