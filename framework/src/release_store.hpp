// The release store (thesis 3.4.1, seed 002's configuration repository): one SQLite database
// in the state directory holding the permanent release, the provisional transaction if any,
// every transaction report with its issuer, saved checkpoints and crash records. Every write is
// one SQLite transaction (WAL, synchronous=FULL), so a process killed at any moment leaves a
// database that opens and a release that is entirely the old or entirely the new one.
// A leaf: it calls no other part of the framework.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "nonstop/store_records.hpp"
#include "nonstop/transaction_report.hpp"

struct sqlite3;

namespace nonstop::detail {

/// One module of a release.
struct ReleaseModule {
    std::string name;
    std::string library;  // real path
    std::string sha256;
    std::string kind;
    std::string version;
    bool enabled = true;
};

/// The modules that run and the limits they run under.
struct Release {
    std::vector<ReleaseModule> modules;
    std::int64_t quiescence_ms = 0;
    std::string limits;  // every Config limit, "name=ms ..." (recorded; only the quiescence
                         // limit can change at run time)
};

class ReleaseStore {
public:
    /// The database schema this code writes (PRAGMA user_version).
    static constexpr int kSchemaVersion = 2;

    /// Opens (creating if needed) `dir`/nonstop.db, `dir` made with mode 0700; the file is
    /// opened without following a symbolic link, and `dir` is locked against a second process.
    /// Throws Error with one sentence.
    explicit ReleaseStore(const std::string& dir);
    ~ReleaseStore();
    ReleaseStore(const ReleaseStore&) = delete;
    ReleaseStore& operator=(const ReleaseStore&) = delete;

    const std::string& path() const { return path_; }

    /// A committed transaction: its report and the release it produced, as the provisional
    /// release. Returns the store's number for the transaction. Without `removed`, `release`
    /// is the whole release; with it, only what the transaction changed: `release.modules`
    /// are the modules it loaded or changed, `*removed` those it removed, applied over the
    /// permanent release (or over the provisional one still on probation).
    std::int64_t record_provisional(const TransactionReport& report, const Release& release,
                                    const std::vector<std::string>* removed = nullptr);
    /// The provisional release of `transaction` becomes the permanent one.
    void make_permanent(std::int64_t transaction);
    /// The provisional release of `transaction` is dropped (rolled back); `why` is kept.
    void discard_provisional(std::int64_t transaction, const std::string& why);
    /// A report that changed no release (rejected, aborted, or made at restore or shutdown).
    std::int64_t record_report(const TransactionReport& report);

    std::optional<Release> permanent();
    /// The provisional transaction's number and its release, if one is pending.
    std::optional<std::pair<std::int64_t, Release>> provisional();
    /// The modules a transaction changed (load or replace), by name.
    std::vector<std::string> changed_by(std::int64_t transaction);

    /// Saves checkpoints (those without an error), all in one SQLite transaction.
    void save_checkpoints(const std::vector<SavedCheckpoint>& checkpoints);
    std::map<std::string, SavedCheckpoint> checkpoints();

    /// Adds crash records (a record already imported is ignored); returns those added.
    std::vector<CrashRecord> import_crashes(const std::vector<CrashRecord>& records);
    std::vector<CrashRecord> crashes();
    /// Every committed change of module `name`, oldest first.
    std::vector<VersionHistoryEntry> history_of(const std::string& name);
    /// The kind of module `name` in the latest record that names it; empty if none.
    std::string kind_of(const std::string& name);

private:
    class Statement;
    void exec_i(const char* sql);
    void migrate_i();
    std::int64_t insert_report_i(const TransactionReport& report, const char* release_state);
    void write_release_i(const char* which, std::int64_t transaction, const Release& release);
    void write_changes_i(std::int64_t transaction, const Release& release,
                         const std::vector<std::string>& removed);
    void apply_changes_i();
    static Statement& bind_header(Statement& s, std::int64_t transaction, const Release& release);
    static Statement& bind_module(Statement& s, const ReleaseModule& m);
    Release read_release_i(const char* which);
    template <class F>
    auto in_transaction(F&& body);

    std::mutex mutex_;
    std::string path_;
    sqlite3* db_ = nullptr;
    int lock_fd_ = -1;  // flock on `dir`/lock for the store's lifetime
    std::int64_t boot_ = 0;
};

}  // namespace nonstop::detail
