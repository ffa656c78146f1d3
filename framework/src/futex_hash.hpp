// The kernel's futex hash, sized for this process's module threads.
//
// Since Linux 6.16 each process has a private futex hash whose default size follows the number
// of CPUs, not of threads: 16 buckets on 2 CPUs. Every futex wake (a condition notified, a
// contended mutex released) walks the waiters of one bucket, and every idle module thread waits
// on a futex of its own, so with 10,000 modules each wake walked about 600 waiters: a thread
// hand-off took 130-250 µs instead of 5-10, and a swap's blackout grew 9-33 times (measured,
// docs/architecture.md "Very many modules").
#pragma once

#include <cstddef>

namespace nonstop::detail {

/// Grows this process's private futex hash to at least `slots` buckets (rounded up to a power of
/// two, at most 131072). Never shrinks it, so a size the host chose larger stays; does nothing
/// where the kernel has no private hash (before Linux 6.16) or the process chose the global one.
/// Returns the size in place afterwards, 0 when there is no private hash.
std::size_t fit_futex_hash(std::size_t slots);

/// The size of this process's private futex hash; 0 when it has none (the kernel's global hash).
std::size_t futex_hash_slots();

}  // namespace nonstop::detail
