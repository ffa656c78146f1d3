#include "futex_hash.hpp"

#include <sys/prctl.h>

#include <algorithm>
#include <bit>
#include <mutex>

// Linux 6.16 (include/uapi/linux/prctl.h); Debian 12's headers predate it.
#ifndef PR_FUTEX_HASH
#define PR_FUTEX_HASH 78
#define PR_FUTEX_HASH_SET_SLOTS 1
#define PR_FUTEX_HASH_GET_SLOTS 2
#endif

namespace nonstop::detail {

namespace {
constexpr std::size_t kMaxSlots = 131072;  // the kernel refuses more
}

std::size_t futex_hash_slots() {
    const int slots = ::prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_GET_SLOTS, 0, 0, 0);
    return slots > 0 ? static_cast<std::size_t>(slots) : 0;
}

std::size_t fit_futex_hash(std::size_t slots) {
    static std::mutex mutex;  // two runtimes growing it at once
    // What it last was: it only grows, so the kernel is asked again only when more slots are
    // wanted (a load is one syscall shorter).
    static std::size_t known = 0;
    std::lock_guard lock(mutex);
    const std::size_t asked = std::bit_ceil(std::clamp<std::size_t>(slots, 2, kMaxSlots));
    if (asked <= known) return known;
    const std::size_t now = known = futex_hash_slots();
    // 0: no private hash (an older kernel, or the process asked for the global one, which the
    // kernel never lets it leave): nothing to grow.
    if (now == 0) return 0;
    if (asked <= now) return now;
    // The kernel moves the waiters over to the new hash itself; a refusal leaves the old one.
    ::prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, static_cast<unsigned long>(asked), 0, 0);
    return known = futex_hash_slots();
}

}  // namespace nonstop::detail
