//! A team of the pool's threads held for one model step.
//!
//! A decode step is ~150 short parallel regions (the products of every layer,
//! attention, the adapters' rows) with short serial stretches between them.
//! Through rayon, each region hands work to the other threads, which by then
//! have usually gone to sleep: a futex wake per region, and a region that
//! starts on one thread and is joined by the other late. Measured on 2 cores
//! at batch 8: the products scaled 1.46× from one thread to two, where the
//! same products in a loop that keeps the threads awake scale ~2×.
//!
//! [`with_team`] runs a closure (the step) on the calling pool thread while
//! the pool's other threads join it as helpers and spin between regions, as
//! ggml's thread pool does. Inside, [`for_each`] and [`for_each_chunk_mut`]
//! hand a region's tasks to the team: the caller and every helper claim tasks
//! from one counter, and the caller returns once each helper that took part
//! has finished. Outside a team they run on rayon as before. Every task is
//! computed alone, so the results do not depend on which thread ran which
//! task: the bits are the same with a team, with rayon, or on one thread.
//!
//! The caller never waits for a helper that is not working on the region: a
//! helper *enters* a region through its gate (a compare-and-swap that counts
//! it in), and the caller, its own claims done, closes the gate and waits only
//! for the helpers it counted. A helper that the pool starts late, or that the
//! OS has descheduled (another thread wants the core: an adapter load, say),
//! costs the region nothing: the caller claims the tasks it would have run.

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};

use rayon::prelude::*;

/// A region's work as each participant runs it: claim tasks until none are left.
type Job<'a> = dyn Fn(&Team) + Sync + 'a;

/// Spins with nothing to do before a helper yields its core at every check
/// (cheap when no other thread wants the core, and the way to give it up when
/// one does).
const SPINS_BEFORE_YIELD: u32 = 1 << 12;

/// The gate: the region's generation above [`GEN_SHIFT`], [`OPEN`] while
/// helpers may enter, the number that entered in the bits below.
const GEN_SHIFT: u32 = 16;
const OPEN: u64 = 1 << 15;
const ENTERED: u64 = OPEN - 1;

pub(crate) struct Team {
    gate: AtomicU64,
    /// The open region; written only while no helper is in one.
    job: UnsafeCell<Option<&'static Job<'static>>>,
    tasks: AtomicUsize,
    next: AtomicUsize,
    /// Helpers that entered the current region and left it.
    finished: AtomicUsize,
    closed: AtomicBool,
    /// A region is running: one started inside a task runs on its thread alone.
    busy: AtomicBool,
    /// The first panic of a helper's task, resumed on the caller.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

// SAFETY: `job` is written by the caller only between regions, when no helper
// is in one (the caller waited for every helper that entered the last), and
// read by a helper only after it entered the open region; everything else is
// atomic or locked.
unsafe impl Sync for Team {}

thread_local! {
    static CURRENT: Cell<*const Team> = const { Cell::new(std::ptr::null()) };
    /// This thread is a helper of some team: a region started inside one of
    /// its tasks runs on it alone (the team's other threads are in the region).
    static HELPING: Cell<bool> = const { Cell::new(false) };
}

/// Run `f` with the pool's other threads held as a team for the regions inside
/// it (see the module's documentation). Called on a rayon pool thread; off the
/// pool, with one thread, or inside another team, `f` just runs.
pub fn with_team<R>(f: impl FnOnce() -> R) -> R {
    let threads = rayon::current_num_threads();
    if threads < 2 || rayon::current_thread_index().is_none() || !CURRENT.with(Cell::get).is_null() {
        return f();
    }
    let team = Team {
        gate: AtomicU64::new(0),
        job: UnsafeCell::new(None),
        tasks: AtomicUsize::new(0),
        next: AtomicUsize::new(0),
        finished: AtomicUsize::new(0),
        closed: AtomicBool::new(false),
        busy: AtomicBool::new(false),
        panic: Mutex::new(None),
    };
    rayon::in_place_scope(|s| {
        for _ in 1..threads {
            let team = &team;
            s.spawn(move |_| team.help());
        }
        // Closed on the way out, unwinding included, so the helpers let go.
        struct Leave<'a>(&'a Team, *const Team);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(self.1));
                self.0.closed.store(true, Release);
            }
        }
        let _leave = Leave(&team, CURRENT.with(|c| c.replace(&team as *const Team)));
        f()
    })
}

/// Run `f(0..tasks)`: on the current team if this thread leads one, else on
/// rayon. Each task must be computed alone (any order, any thread).
pub fn for_each(tasks: usize, f: impl Fn(usize) + Sync) {
    match place() {
        Place::Team(team) if tasks > 1 => team.run(tasks, &|t: &Team| {
            while let Some(i) = t.claim() {
                f(i);
            }
        }),
        Place::Team(_) | Place::Here => (0..tasks).for_each(f),
        Place::Rayon => (0..tasks).into_par_iter().for_each(&f),
    }
}

/// Run `f(&mut state, i, chunk)` over the `chunk`-sized pieces of `data` (the
/// last shorter), with a `state` made by `init` once per thread, on the team
/// or on rayon as [`for_each`].
pub fn for_each_chunk_mut<T: Send, S>(
    data: &mut [T],
    chunk: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &mut [T]) + Sync,
) {
    let chunk = chunk.max(1);
    let team = match place() {
        Place::Team(team) => Some(team),
        Place::Here => None,
        Place::Rayon => {
            data.par_chunks_mut(chunk).enumerate().for_each_init(&init, |s, (i, c)| f(s, i, c));
            return;
        }
    };
    let (len, base) = (data.len(), SendPtr(data.as_mut_ptr()));
    let tasks = len.div_ceil(chunk);
    let Some(team) = team.filter(|_| tasks > 1) else {
        let mut s = init();
        data.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(&mut s, i, c));
        return;
    };
    team.run(tasks, &|t: &Team| {
        let mut s = init();
        while let Some(i) = t.claim() {
            let start = i * chunk;
            // SAFETY: each index is claimed once, so the pieces handed out are
            // disjoint, inside `data`, and `data` is borrowed until every
            // participant is done (`run` returns only then).
            let piece = unsafe { std::slice::from_raw_parts_mut(base.get().add(start), chunk.min(len - start)) };
            f(&mut s, i, piece);
        }
    });
}

struct SendPtr<T>(*mut T);
impl<T> Clone for SendPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SendPtr<T> {}
// SAFETY: used only to hand out disjoint pieces of one slice (see above).
unsafe impl<T: Send> Send for SendPtr<T> {}
unsafe impl<T: Send> Sync for SendPtr<T> {}
impl<T> SendPtr<T> {
    fn get(self) -> *mut T {
        self.0
    }
}

/// Where a region runs.
enum Place {
    Team(&'static Team),
    /// Inside a region's task: on this thread, in order.
    Here,
    Rayon,
}

fn place() -> Place {
    if HELPING.with(Cell::get) {
        return Place::Here;
    }
    match current() {
        Some(team) if team.busy.load(Relaxed) => Place::Here,
        Some(team) => Place::Team(team),
        None => Place::Rayon,
    }
}

fn current() -> Option<&'static Team> {
    let p = CURRENT.with(Cell::get);
    // SAFETY: set only by `with_team` for the duration of its closure on this
    // thread, during which the team lives on that call's stack.
    (!p.is_null()).then(|| unsafe { &*p })
}

impl Team {
    fn claim(&self) -> Option<usize> {
        let i = self.next.fetch_add(1, Relaxed);
        (i < self.tasks.load(Relaxed)).then_some(i)
    }

    /// One region: publish it, take part, close it, and wait for the helpers
    /// that entered it.
    fn run(&self, tasks: usize, job: &Job<'_>) {
        // SAFETY: the reference is only read during this call: helpers that
        // entered the region are waited for below (on unwind too).
        let job = unsafe { std::mem::transmute::<&Job<'_>, &'static Job<'static>>(job) };
        // No helper is in a region now (the last one's were waited for).
        unsafe { *self.job.get() = Some(job) };
        self.tasks.store(tasks, Relaxed);
        self.next.store(0, Relaxed);
        self.finished.store(0, Relaxed);
        let generation = (self.gate.load(Relaxed) >> GEN_SHIFT) + 1;
        self.gate.store(generation << GEN_SHIFT | OPEN, Release);
        struct Close<'a>(&'a Team);
        impl Drop for Close<'_> {
            fn drop(&mut self) {
                let t = self.0;
                t.busy.store(false, Relaxed);
                let entered = (t.gate.fetch_and(!OPEN, AcqRel) & ENTERED) as usize;
                while t.finished.load(Acquire) < entered {
                    std::hint::spin_loop();
                }
            }
        }
        let close = Close(self);
        self.busy.store(true, Relaxed);
        job(self);
        drop(close);
        if let Some(p) = self.panic.lock().unwrap_or_else(|e| e.into_inner()).take() {
            resume_unwind(p);
        }
    }

    /// A helper's life: enter each region it finds open, leave when the team
    /// closes.
    fn help(&self) {
        struct Helping(bool);
        impl Drop for Helping {
            fn drop(&mut self) {
                HELPING.with(|h| h.set(self.0));
            }
        }
        let _helping = Helping(HELPING.with(|h| h.replace(true)));
        let mut seen = self.gate.load(Acquire) >> GEN_SHIFT;
        let mut idle = 0u32;
        while !self.closed.load(Acquire) {
            let v = self.gate.load(Acquire);
            if v >> GEN_SHIFT == seen {
                if idle < SPINS_BEFORE_YIELD {
                    idle += 1;
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
                continue;
            }
            if v & OPEN != 0 && v & ENTERED < ENTERED {
                if self.gate.compare_exchange_weak(v, v + 1, AcqRel, Acquire).is_err() {
                    continue;
                }
                // SAFETY: entered the open region (Acquire on the gate that the
                // caller published it with); the caller waits for this helper
                // before it writes `job` again.
                if let Some(job) = unsafe { *self.job.get() }
                    && let Err(p) = catch_unwind(AssertUnwindSafe(|| job(self)))
                {
                    self.panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(p);
                }
                self.finished.fetch_add(1, Release);
            }
            // Done with this region, or it closed before this helper came.
            seen = v >> GEN_SHIFT;
            idle = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap()
    }

    #[test]
    fn every_task_runs_once_in_every_region_at_1_to_4_threads() {
        for threads in 1..=4 {
            pool(threads).install(|| {
                with_team(|| {
                    for region in 0..200usize {
                        let tasks = region % 17 + 1;
                        let hits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
                        for_each(tasks, |i| {
                            hits[i].fetch_add(1, Relaxed);
                        });
                        assert!(hits.iter().all(|h| h.load(Relaxed) == 1), "{threads} threads, region {region}");
                        let mut data: Vec<usize> = vec![0; tasks * 3 + 1];
                        for_each_chunk_mut(
                            &mut data,
                            3,
                            || 0usize,
                            |seen, i, c| {
                                *seen += 1;
                                c.iter_mut().for_each(|v| *v += i + 1);
                            },
                        );
                        assert!(data.iter().enumerate().all(|(j, &v)| v == j / 3 + 1), "{threads} threads");
                    }
                })
            });
        }
    }

    #[test]
    fn a_region_inside_a_task_runs_on_that_thread_and_every_task_once() {
        for threads in 1..=3 {
            pool(threads).install(|| {
                with_team(|| {
                    for _ in 0..50 {
                        let hits: Vec<AtomicUsize> = (0..6 * 5).map(|_| AtomicUsize::new(0)).collect();
                        for_each(6, |i| {
                            let mut row = vec![0usize; 5];
                            for_each_chunk_mut(&mut row, 1, || (), |_, j, c| c[0] = j);
                            for_each(5, |j| {
                                hits[i * 5 + row[j]].fetch_add(1, Relaxed);
                            });
                        });
                        assert!(hits.iter().all(|h| h.load(Relaxed) == 1), "{threads} threads");
                    }
                })
            });
        }
    }

    #[test]
    fn outside_a_team_the_regions_run_on_rayon() {
        let hits: Vec<AtomicUsize> = (0..64).map(|_| AtomicUsize::new(0)).collect();
        for_each(64, |i| {
            hits[i].fetch_add(1, Relaxed);
        });
        assert!(hits.iter().all(|h| h.load(Relaxed) == 1));
        // Off the pool, `with_team` just runs its closure.
        assert_eq!(with_team(|| 7), 7);
    }

    #[test]
    fn a_panicking_task_reaches_the_caller_and_the_team_still_closes() {
        let p = pool(3);
        for round in 0..20 {
            let r = p.install(|| {
                catch_unwind(AssertUnwindSafe(|| {
                    with_team(|| {
                        for_each(8, |i| assert!(i != (round % 8), "task {i} fails"));
                    })
                }))
            });
            assert!(r.is_err(), "round {round}: the panic reached the caller");
        }
        // The pool is usable after: every helper left.
        assert_eq!(p.install(|| with_team(|| (0..100).into_par_iter().sum::<usize>())), 4950);
    }

    #[test]
    fn two_teams_at_once_on_one_pool_finish() {
        let p = pool(2);
        let sums: Vec<usize> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|k| {
                    let p = &p;
                    s.spawn(move || {
                        p.install(|| {
                            with_team(|| {
                                let total = AtomicUsize::new(0);
                                for _ in 0..100 {
                                    for_each(10, |i| {
                                        total.fetch_add(i + k, Relaxed);
                                    });
                                }
                                total.load(Relaxed)
                            })
                        })
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (k, s) in sums.iter().enumerate() {
            assert_eq!(*s, 100 * (45 + 10 * k));
        }
    }
}
