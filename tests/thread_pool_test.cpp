// The pool behind Config::module_thread_keep, on its own: when a job's `done` is told, and what
// it is handed. Built from the framework's source (its symbols are not exported).
#include <gtest/gtest.h>
#include <pthread.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <optional>

#include "thread_pool.hpp"

namespace nonstop::detail {
namespace {

// What one job and its `done` report, awaited under one lock.
struct Report {
    std::mutex mutex;
    std::condition_variable cv;
    bool started = false, release = false, done = false, done_before_end = false;
    std::optional<pthread_t> ending;
    pid_t thread = 0;

    std::function<void()> job(std::function<void()> inside = {}) {
        return [this, inside] {
            if (inside) inside();
            std::unique_lock lock(mutex);
            started = true;
            thread = ::gettid();
            done_before_end = done;
            cv.notify_all();
            cv.wait(lock, [&] { return release; });
        };
    }
    ThreadPool::Done told() {
        return [this](std::optional<pthread_t> e) {
            std::lock_guard lock(mutex);
            done = true;
            ending = e;
            cv.notify_all();
        };
    }
    template <class P>
    void await(P p) {
        std::unique_lock lock(mutex);
        cv.wait(lock, p);
    }
    void finish() {
        {
            std::lock_guard lock(mutex);
            release = true;
        }
        cv.notify_all();
        await([&] { return done; });
    }
};

// A job given to a parked thread is told done once it has ended, not when the thread takes it.
TEST(ThreadPoolTest, ADoneIsToldAfterItsJobEvenOnAReusedThread) {
    ThreadPool pool(0, std::chrono::seconds(60), 4);
    Report first, second;
    ASSERT_TRUE(pool.run(first.job(), first.told()));
    first.finish();
    EXPECT_FALSE(first.ending.has_value());  // parked, not ending
    ASSERT_TRUE(pool.run(second.job(), second.told()));
    second.await([&] { return second.started; });
    EXPECT_EQ(second.thread, first.thread);
    {
        std::lock_guard lock(second.mutex);
        EXPECT_FALSE(second.done);
        EXPECT_FALSE(second.done_before_end);
    }
    second.finish();
    EXPECT_EQ(pool.started(), 1u);
}

pthread_key_t key;
bool destroyed = false;  // by the key's destructor, on the ending thread, before it is joined

// A job that leaves thread-specific data: its thread ends instead of parking, and is handed to
// whoever `done` tells, who joins it after the data's destructor ran.
TEST(ThreadPoolTest, AThreadLeftWithThreadSpecificDataIsHandedToItsJoiner) {
    ASSERT_EQ(pthread_key_create(&key, [](void*) { destroyed = true; }), 0);
    ThreadPool pool(0, std::chrono::seconds(60), 4);
    Report report;
    ASSERT_TRUE(pool.run(report.job([] { pthread_setspecific(key, &key); }), report.told()));
    report.finish();
    ASSERT_TRUE(report.ending.has_value());
    ASSERT_EQ(pthread_join(*report.ending, nullptr), 0);
    EXPECT_TRUE(destroyed);
    EXPECT_EQ(pool.parked(), 0u);
    pthread_key_delete(key);
}

}  // namespace
}  // namespace nonstop::detail
