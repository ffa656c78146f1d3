// Every time limit and size of the runtime, with its default, in one place.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace nonstop {

struct Config {
    /// How long a target may take to reach quiescence during a transaction (SetTimer).
    std::chrono::milliseconds quiescence_timeout{5000};
    /// How long each hook of a module may run before the framework gives up on that instance
    /// (abandons it: the transaction aborts or the removal goes on without it, and the thread,
    /// which cannot be killed, is left to finish on its own with its library kept mapped).
    /// initialize() of a new version:
    std::chrono::milliseconds initialize_timeout{5000};
    /// put_state() of the old version (past it, the old version votes no) and get_state() of
    /// the new one:
    std::chrono::milliseconds state_timeout{5000};
    /// enable() of a version that starts serving:
    std::chrono::milliseconds enable_timeout{2000};
    /// terminate() and the destruction of an instance that leaves:
    std::chrono::milliseconds terminate_timeout{2000};
    /// One handle() call running longer than this marks the module stuck (watchdog).
    std::chrono::milliseconds stuck_after{2000};
    /// Shutdown: how long the runtime's destructor lets each module drain its queue before it
    /// abandons it (naming it on stderr); the whole shutdown takes at most about twice this.
    std::chrono::milliseconds shutdown_timeout{5000};
    /// Messages one module's input queue (or its swap buffer) holds before senders block.
    /// Blocking, not dropping: the thesis's queuing model (4.5) sizes this at Σλ·T.
    std::size_t queue_capacity = 1'000'000;
    /// Payload bytes one module's input queue (or its swap buffer) holds before senders block;
    /// a single message larger than this is refused. One counter holds both bounds: each
    /// message is charged its payload plus queue_capacity_bytes / queue_capacity.
    std::size_t queue_capacity_bytes = std::size_t{256} << 20;
    /// Buckets of the process's private futex hash (Linux 6.16 and later) per loaded module:
    /// each idle module thread waits on a futex, and the kernel's default hash (4 buckets per
    /// CPU) made every thread wake-up walk hundreds of waiters once thousands of modules were
    /// loaded. The runtime grows the hash as modules load (never shrinks it); 0: leaves it alone.
    std::size_t futex_slots_per_module = 2;
    /// The stack of each module thread, in bytes; 0: the platform's default (glibc: the stack
    /// ulimit, usually 8 MiB). What a thread touches is resident either way (8 KiB for an idle
    /// module); a smaller stack saves address space and page tables: with 10,000 modules,
    /// 83 GB and 40 MiB at 8 MiB, 3.6 GB and 5 MiB at 256 KiB (measured). A module whose
    /// handler recurses deeply or keeps large arrays on its stack needs the default.
    std::size_t module_stack_size = 0;
    /// How long a module thread whose instance has ended stays parked for the next instance:
    /// a load, replacement or removal then costs one wake-up, not a thread's start and end
    /// (`core_bench --only load` prints both). 0 (the default): every instance gets a new
    /// thread that ends with it. An instance still has a thread to itself for its whole life.
    /// Before a thread is parked it is given back its signal mask and alternate signal stack,
    /// name, scheduling policy and priority, nice value, affinity, floating-point environment,
    /// locale (uselocale) and cancellation state; a thread left with thread-specific data
    /// (pthread_setspecific) or a setting it cannot get back ends instead, and the unload
    /// returns once it has. What it cannot give back is the thread-locals of libraries that
    /// stay loaded (the C and C++ libraries, the host's): set it for modules that do not rely
    /// on those starting fresh. A module library with thread-locals of its own, or one that
    /// brings in or shares a dependency with thread-locals, always gets a new thread (their
    /// destructors run when the thread ends, and glibc keeps the library mapped until then).
    std::chrono::milliseconds module_thread_keep{0};
    /// A replacement's commit-time checkpoint up to this many bytes is kept with its release
    /// for `rollback -from-checkpoint` (until the module is replaced again or rolled back), and
    /// the new version restores a copy of it (get_state). A larger one is handed to the new
    /// version by move (Module::take_state: no copy in the blackout) and the release keeps
    /// none. 0: never kept; SIZE_MAX: always.
    std::size_t checkpoint_keep_bytes = std::size_t{64} << 20;
    /// Transaction reports kept for `history`.
    std::size_t history_size = 256;
    /// Upper bound on waiting for the first buffered message to be served after a swap, when
    /// the report's blackout figure is measured.
    std::chrono::milliseconds blackout_probe_limit{1000};
    /// Directories searched, in order, for a library named without a '/'.
    std::vector<std::string> module_path;
    /// Verified private copies of library files kept after their library unloads, so that a
    /// file loaded again unchanged is not read, checked, hashed and copied again: at most this
    /// many copies and bytes (0 keeps none; loaded libraries keep their copies regardless).
    /// They live in the runtime's private directory and go with the runtime.
    std::size_t library_cache_entries = 64;
    std::uint64_t library_cache_bytes = std::uint64_t{256} << 20;
    /// A copy is reused without reading the file again only when the file's device, inode,
    /// size, modification and change times are those it was verified with, and its last change
    /// was at least this much older than that verification (time stamps are coarse: a file
    /// changed more recently is read and hashed on every load, its copy reused if the content
    /// is the same).
    std::chrono::milliseconds library_settle{2000};
    /// Preflight: before the host loads a new library, a sandbox child process
    /// (nonstop-preflight) loads it, creates an instance and runs initialize(); a crash, abort,
    /// hang or exception there rejects the transaction. The default for transactions that do
    /// not say (TransactionOptions): off for embedders; the shell and console turn it on.
    bool preflight = false;
    /// With preflight, the child also runs get_state() on the old version's real checkpoint
    /// during voting (a failure there votes no); this adds to voting, hence to the blackout.
    bool preflight_state = false;
    /// How long the child may take to load the library and run initialize(), and then
    /// get_state(); past it the child is killed and the candidate reported hung.
    std::chrono::milliseconds preflight_timeout{5000};
    /// The preflight program; empty: $NONSTOP_PREFLIGHT, else nonstop-preflight next to
    /// libnonstop or in its installed libexec directory.
    std::string preflight_program;
    /// Where the release store keeps its database (nonstop.db) and the crash black box
    /// (crash.log); made with mode 0700 if missing. Empty: no store, nothing survives the
    /// process. Runtime::instance() takes NONSTOP_STATE_DIR when this is empty.
    std::string state_dir;

    // --- Probation and audits (docs/architecture.md, "Probation, audits, rollback").

    /// How long a committed replacement stays provisional, watched by the health rules, before
    /// it becomes permanent; 0: off (every commit is permanent at once). `probation SECONDS`.
    std::chrono::milliseconds probation{0};
    /// Health rule "failures": a provisional version whose handle() has thrown this many times
    /// since its commit is rolled back; 0: no count limit.
    std::uint64_t probation_max_failures = 10;
    /// Health rule "failure rate": rolled back when at least this share of the messages it
    /// served threw, once it has served probation_min_messages; 0: no rate limit.
    double probation_max_failure_ratio = 0.5;
    std::uint64_t probation_min_messages = 20;
    /// Health rule "idle": input queued and nothing served for this long.
    std::chrono::milliseconds probation_idle_limit{5000};
    /// Every this long each module's audit() runs (in its own thread); 0: no audits.
    std::chrono::milliseconds audit_period{0};
    /// How long one audit() may take before it counts as failed.
    std::chrono::milliseconds audit_timeout{1000};
    /// How often the health monitor checks the rules, the end of probation and due audits.
    std::chrono::milliseconds health_period{50};
};

}  // namespace nonstop
