#include "release_store.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "nonstop/error.hpp"

namespace nonstop::detail {

namespace {

std::int64_t to_unix_ms(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::chrono::system_clock::time_point from_unix_ms(std::int64_t ms) {
    return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

// Version 1 (version 2 adds what kSchema2 adds). Every table is written only inside one SQLite
// transaction per store call.
const char* const kSchema = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE transactions(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  boot INTEGER NOT NULL,
  runtime_id INTEGER NOT NULL,
  started_ms INTEGER NOT NULL,
  issuer TEXT NOT NULL,
  command TEXT NOT NULL,
  outcome TEXT NOT NULL,
  reason TEXT NOT NULL,
  release_state TEXT NOT NULL
    CHECK(release_state IN ('none', 'provisional', 'permanent', 'rolled back')),
  release_note TEXT NOT NULL DEFAULT '',
  report TEXT NOT NULL);
CREATE TABLE targets(
  transaction_id INTEGER NOT NULL REFERENCES transactions(id),
  module TEXT NOT NULL, action TEXT NOT NULL, library TEXT NOT NULL,
  old_version TEXT NOT NULL, new_version TEXT NOT NULL, kind TEXT NOT NULL,
  sha256 TEXT NOT NULL);
CREATE INDEX targets_by_module ON targets(module);
CREATE TABLE releases(
  which TEXT PRIMARY KEY CHECK(which IN ('permanent', 'provisional')),
  transaction_id INTEGER NOT NULL,
  quiescence_ms INTEGER NOT NULL,
  limits TEXT NOT NULL);
CREATE TABLE release_modules(
  which TEXT NOT NULL,
  module TEXT NOT NULL, library TEXT NOT NULL, sha256 TEXT NOT NULL, kind TEXT NOT NULL,
  version TEXT NOT NULL, enabled INTEGER NOT NULL,
  PRIMARY KEY(which, module));
CREATE TABLE checkpoints(
  module TEXT PRIMARY KEY, version TEXT NOT NULL, schema INTEGER NOT NULL,
  bytes BLOB NOT NULL, taken_ms INTEGER NOT NULL);
CREATE TABLE crashes(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time_ms INTEGER NOT NULL, pid INTEGER NOT NULL, module TEXT NOT NULL, version TEXT NOT NULL,
  signal INTEGER NOT NULL, signal_name TEXT NOT NULL, backtrace TEXT NOT NULL,
  provisional_transaction INTEGER NOT NULL DEFAULT 0,
  UNIQUE(time_ms, pid, module, signal));
)sql";

// Version 2: a provisional release may be written as the changes of its commands only
// (`delta`), over the permanent one: rows of the modules they changed, and a `removed` row for
// each module they removed. A release written whole (every version 1 release) has delta 0.
const char* const kSchema2 = R"sql(
ALTER TABLE releases ADD COLUMN delta INTEGER NOT NULL DEFAULT 0;
ALTER TABLE release_modules ADD COLUMN removed INTEGER NOT NULL DEFAULT 0;
)sql";

}  // namespace

// One prepared statement; throws Error naming the store on every failure.
class ReleaseStore::Statement {
public:
    Statement(ReleaseStore& store, const char* sql) : store_(store) {
        if (sqlite3_prepare_v2(store.db_, sql, -1, &stmt_, nullptr) != SQLITE_OK) fail();
    }
    ~Statement() { sqlite3_finalize(stmt_); }
    Statement& bind(int i, std::int64_t v) {
        sqlite3_bind_int64(stmt_, i, v);
        return *this;
    }
    Statement& bind(int i, const std::string& v) {
        sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
        return *this;
    }
    Statement& blob(int i, const std::string& v) {
        sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
        return *this;
    }
    /// True while a row is there.
    bool step() {
        const int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW) return true;
        if (rc != SQLITE_DONE) fail();
        return false;
    }
    void run() {
        while (step()) {
        }
    }
    /// Ready to run again with new bindings (one statement for many rows).
    Statement& reset() {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
        return *this;
    }
    std::int64_t integer(int col) { return sqlite3_column_int64(stmt_, col); }
    std::string text(int col) {
        const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, col));
        return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
                 : std::string();
    }

private:
    [[noreturn]] void fail() {
        throw Error("the release store '" + store_.path_ +
                    "' failed: " + sqlite3_errmsg(store_.db_));
    }
    ReleaseStore& store_;
    sqlite3_stmt* stmt_ = nullptr;
};

ReleaseStore::ReleaseStore(const std::string& dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        // 0700: checkpoints and reports may hold what only the host's user should read.
        if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
            throw Error("cannot create the state directory '" + dir + "': " + std::strerror(errno));
    }
    // One process per state directory: two would each take the other's release for theirs.
    const std::string lock_path = (fs::path(dir) / "lock").string();
    lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (lock_fd_ < 0) throw Error("cannot open '" + lock_path + "': " + std::strerror(errno));
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
        ::close(lock_fd_);
        throw Error("the state directory '" + dir + "' is in use by another process");
    }
    path_ = (fs::path(dir) / "nonstop.db").string();
    const int flags =
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_FULLMUTEX;
    if (sqlite3_open_v2(path_.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
        const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
        sqlite3_close(db_);
        db_ = nullptr;
        ::close(lock_fd_);
        throw Error("cannot open the release store '" + path_ + "': " + why);
    }
    sqlite3_busy_timeout(db_, 5000);
    try {
        // WAL: a reader (another tool) never blocks a commit. FULL: each commit is on disk
        // before the command reports, so a power cut cannot bring back an older release than
        // the operator was told about; commits are operator commands, rare enough for an fsync.
        exec_i("PRAGMA journal_mode=WAL");
        exec_i("PRAGMA synchronous=FULL");
        exec_i("PRAGMA foreign_keys=ON");
        migrate_i();
    } catch (const Error& e) {
        sqlite3_close(db_);
        db_ = nullptr;
        std::string why = e.what();
        if (const auto at = why.find(" failed: "); at != std::string::npos) why.erase(0, at + 9);
        ::close(lock_fd_);
        throw Error("cannot open the release store '" + path_ + "': " + why);
    }
}

ReleaseStore::~ReleaseStore() {
    sqlite3_close(db_);
    ::close(lock_fd_);  // releases the lock
}

void ReleaseStore::exec_i(const char* sql) {
    char* message = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) != SQLITE_OK) {
        std::string why = message ? message : sqlite3_errmsg(db_);
        sqlite3_free(message);
        throw Error("the release store '" + path_ + "' failed: " + why);
    }
}

template <class F>
auto ReleaseStore::in_transaction(F&& body) {
    std::lock_guard lock(mutex_);
    exec_i("BEGIN IMMEDIATE");
    try {
        if constexpr (std::is_void_v<decltype(body())>) {
            body();
            exec_i("COMMIT");
        } else {
            auto result = body();
            exec_i("COMMIT");
            return result;
        }
    } catch (...) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

void ReleaseStore::migrate_i() {
    std::int64_t version = 0;
    {
        Statement s(*this, "PRAGMA user_version");
        if (s.step()) version = s.integer(0);
    }
    if (version > kSchemaVersion)
        throw Error("its schema version " + std::to_string(version) +
                    " is newer than this program's (" + std::to_string(kSchemaVersion) + ")");
    exec_i("BEGIN IMMEDIATE");
    try {
        if (version == 0) exec_i(kSchema);
        if (version < 2) {
            exec_i(kSchema2);
            exec_i("PRAGMA user_version=2");
        }
        Statement(*this,
                  "INSERT INTO meta(key, value) VALUES('boots', '1') "
                  "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1")
            .run();
        Statement s(*this, "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'boots'");
        if (s.step()) boot_ = s.integer(0);
        exec_i("COMMIT");
    } catch (...) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

std::int64_t ReleaseStore::insert_report_i(const TransactionReport& r, const char* state) {
    Statement s(*this,
                "INSERT INTO transactions(boot, runtime_id, started_ms, issuer, command, outcome, "
                "reason, release_state, report) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)");
    s.bind(1, boot_)
        .bind(2, static_cast<std::int64_t>(r.id))
        .bind(3, to_unix_ms(r.started))
        .bind(4, r.issuer)
        .bind(5, r.command)
        .bind(6, std::string(to_string(r.outcome)))
        .bind(7, r.reason)
        .bind(8, std::string(state))
        .bind(9, r.to_string());
    s.run();
    const std::int64_t id = sqlite3_last_insert_rowid(db_);
    for (const auto& t : r.targets) {
        Statement target(*this,
                         "INSERT INTO targets(transaction_id, module, action, library, "
                         "old_version, new_version, kind, sha256) VALUES(?, ?, ?, ?, ?, ?, ?, ?)");
        target.bind(1, id)
            .bind(2, t.name)
            .bind(3, std::string(to_string(t.action)))
            .bind(4, t.library)
            .bind(5, t.old_version)
            .bind(6, t.new_version)
            .bind(7, t.new_kind.empty() ? t.old_kind : t.new_kind)
            .bind(8, t.sha256);
        target.run();
    }
    return id;
}

void ReleaseStore::write_release_i(const char* which, std::int64_t transaction,
                                   const Release& release) {
    Statement(*this, "DELETE FROM release_modules WHERE which = ?").bind(1, which).run();
    Statement(*this, "DELETE FROM releases WHERE which = ?").bind(1, which).run();
    Statement header(*this,
                     "INSERT INTO releases(which, transaction_id, quiescence_ms, limits, delta) "
                     "VALUES(?4, ?1, ?2, ?3, 0)");
    bind_header(header, transaction, release).bind(4, which).run();
    Statement insert(*this,
                     "INSERT INTO release_modules(which, module, library, sha256, kind, version, "
                     "enabled) VALUES(?, ?, ?, ?, ?, ?, ?)");
    for (const auto& m : release.modules) bind_module(insert.reset().bind(1, which), m).run();
}

// Parameters 1 to 3: the release's transaction, quiescence limit and limits.
ReleaseStore::Statement& ReleaseStore::bind_header(Statement& s, std::int64_t transaction,
                                                   const Release& release) {
    return s.bind(1, transaction).bind(2, release.quiescence_ms).bind(3, release.limits);
}

ReleaseStore::Statement& ReleaseStore::bind_module(Statement& s, const ReleaseModule& m) {
    return s.bind(2, m.name)
        .bind(3, m.library)
        .bind(4, m.sha256)
        .bind(5, m.kind)
        .bind(6, m.version)
        .bind(7, m.enabled ? 1 : 0);
}

// The provisional release as the permanent one (or the provisional one already there, under
// probation) with `release.modules` written over it and `removed` taken out: what a command
// changed, not every module, so that a command costs the same beside 10 modules or 10,000.
void ReleaseStore::write_changes_i(std::int64_t transaction, const Release& release,
                                   const std::vector<std::string>& removed) {
    // Whether a provisional release is there, and how it is written. (bind_module() binds
    // parameters 2 to 7, hence the numbered parameters of `upsert`.)
    std::optional<bool> delta;
    {
        Statement s(*this, "SELECT delta FROM releases WHERE which = 'provisional'");
        if (s.step()) delta = s.integer(0) != 0;
    }
    Statement header(*this,
                     delta ? "UPDATE releases SET transaction_id = ?1, quiescence_ms = ?2, "
                             "limits = ?3 WHERE which = 'provisional'"
                           : "INSERT INTO releases(transaction_id, quiescence_ms, limits, which, "
                             "delta) VALUES(?1, ?2, ?3, 'provisional', 1)");
    bind_header(header, transaction, release).run();
    Statement upsert(*this,
                     "INSERT INTO release_modules(which, module, library, sha256, kind, version, "
                     "enabled, removed) VALUES('provisional', ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
                     "ON CONFLICT(which, module) DO UPDATE SET library = excluded.library, "
                     "sha256 = excluded.sha256, kind = excluded.kind, version = excluded.version, "
                     "enabled = excluded.enabled, removed = excluded.removed");
    for (const auto& m : release.modules) bind_module(upsert.reset(), m).bind(8, 0).run();
    const bool whole = delta && !*delta;  // a whole release: a removed module is left out
    Statement remove(
        *this, whole ? "DELETE FROM release_modules WHERE which = 'provisional' AND module = ?"
                     : "INSERT INTO release_modules(which, module, library, sha256, kind, "
                       "version, enabled, removed) VALUES('provisional', ?, '', '', '', '', "
                       "0, 1) ON CONFLICT(which, module) DO UPDATE SET removed = 1");
    for (const auto& name : removed) remove.reset().bind(1, name).run();
}

Release ReleaseStore::read_release_i(const char* which) {
    Release release;
    {
        Statement s(*this, "SELECT quiescence_ms, limits FROM releases WHERE which = ?");
        s.bind(1, which);
        if (s.step()) {
            release.quiescence_ms = s.integer(0);
            release.limits = s.text(1);
        }
    }
    Statement s(*this,
                "SELECT module, library, sha256, kind, version, enabled FROM release_modules "
                "WHERE which = ? AND removed = 0 ORDER BY module");
    s.bind(1, which);
    while (s.step())
        release.modules.push_back(
            {s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), s.integer(5) != 0});
    return release;
}

std::int64_t ReleaseStore::record_provisional(const TransactionReport& report,
                                              const Release& release,
                                              const std::vector<std::string>* removed) {
    return in_transaction([&] {
        const std::int64_t id = insert_report_i(report, "provisional");
        if (removed != nullptr)
            write_changes_i(id, release, *removed);
        else
            write_release_i("provisional", id, release);
        // A module loaded afresh or removed has no state to come back to.
        for (const auto& t : report.targets)
            if (t.action == Action::load || t.action == Action::unload)
                Statement(*this, "DELETE FROM checkpoints WHERE module = ?").bind(1, t.name).run();
        return id;
    });
}

void ReleaseStore::make_permanent(std::int64_t transaction) {
    in_transaction([&] {
        Statement s(*this,
                    "SELECT transaction_id, delta FROM releases WHERE which = 'provisional'");
        if (!s.step() || s.integer(0) != transaction)
            throw Error("transaction " + std::to_string(transaction) +
                        " is not the provisional one");
        if (s.integer(1) != 0) {
            apply_changes_i();
        } else {
            Statement(*this, "DELETE FROM release_modules WHERE which = 'permanent'").run();
            Statement(*this, "DELETE FROM releases WHERE which = 'permanent'").run();
            Statement(*this, "UPDATE releases SET which = 'permanent' WHERE which = 'provisional'")
                .run();
            Statement(*this,
                      "UPDATE release_modules SET which = 'permanent' WHERE which = 'provisional'")
                .run();
        }
        Statement(*this, "UPDATE transactions SET release_state = 'permanent' WHERE id = ?")
            .bind(1, transaction)
            .run();
    });
}

// The provisional release written as changes, applied to the permanent one.
void ReleaseStore::apply_changes_i() {
    Statement(
        *this,
        "INSERT OR REPLACE INTO release_modules(which, module, library, sha256, kind, "
        "version, enabled, removed) SELECT 'permanent', module, library, sha256, kind, "
        "version, enabled, 0 FROM release_modules WHERE which = 'provisional' AND removed = 0")
        .run();
    Statement(*this,
              "DELETE FROM release_modules WHERE which = 'permanent' AND module IN (SELECT module "
              "FROM release_modules WHERE which = 'provisional' AND removed = 1)")
        .run();
    Statement(*this, "DELETE FROM release_modules WHERE which = 'provisional'").run();
    Statement(
        *this,
        "INSERT OR REPLACE INTO releases(which, transaction_id, quiescence_ms, limits, delta) "
        "SELECT 'permanent', transaction_id, quiescence_ms, limits, 0 FROM releases WHERE "
        "which = 'provisional'")
        .run();
    Statement(*this, "DELETE FROM releases WHERE which = 'provisional'").run();
}

void ReleaseStore::discard_provisional(std::int64_t transaction, const std::string& why) {
    in_transaction([&] {
        Statement(*this, "DELETE FROM release_modules WHERE which = 'provisional'").run();
        Statement(*this, "DELETE FROM releases WHERE which = 'provisional'").run();
        Statement(*this,
                  "UPDATE transactions SET release_state = 'rolled back', release_note = ? "
                  "WHERE id = ?")
            .bind(1, why)
            .bind(2, transaction)
            .run();
    });
}

std::int64_t ReleaseStore::record_report(const TransactionReport& report) {
    return in_transaction([&] { return insert_report_i(report, "none"); });
}

std::optional<Release> ReleaseStore::permanent() {
    std::lock_guard lock(mutex_);
    Statement s(*this, "SELECT 1 FROM releases WHERE which = 'permanent'");
    if (!s.step()) return std::nullopt;
    return read_release_i("permanent");
}

std::optional<std::pair<std::int64_t, Release>> ReleaseStore::provisional() {
    std::lock_guard lock(mutex_);
    Statement s(*this, "SELECT transaction_id, delta FROM releases WHERE which = 'provisional'");
    if (!s.step()) return std::nullopt;
    Release release = read_release_i("provisional");
    if (s.integer(1) == 0) return std::pair{s.integer(0), std::move(release)};
    // Written as changes: the permanent release with them applied.
    std::map<std::string, ReleaseModule> modules;
    for (auto& m : read_release_i("permanent").modules) modules[m.name] = std::move(m);
    for (auto& m : release.modules) modules[m.name] = std::move(m);
    Statement gone(
        *this, "SELECT module FROM release_modules WHERE which = 'provisional' AND removed = 1");
    while (gone.step()) modules.erase(gone.text(0));
    release.modules.clear();
    for (auto& [name, m] : modules) release.modules.push_back(std::move(m));
    return std::pair{s.integer(0), std::move(release)};
}

std::vector<std::string> ReleaseStore::changed_by(std::int64_t transaction) {
    std::lock_guard lock(mutex_);
    Statement s(*this,
                "SELECT module FROM targets WHERE transaction_id = ? AND action IN ('load', "
                "'replace')");
    s.bind(1, transaction);
    std::vector<std::string> out;
    while (s.step()) out.push_back(s.text(0));
    return out;
}

void ReleaseStore::save_checkpoints(const std::vector<SavedCheckpoint>& checkpoints) {
    in_transaction([&] {
        for (const auto& c : checkpoints) {
            if (!c.error.empty()) continue;
            Statement(*this,
                      "INSERT OR REPLACE INTO checkpoints(module, version, schema, bytes, "
                      "taken_ms) VALUES(?, ?, ?, ?, ?)")
                .bind(1, c.module)
                .bind(2, c.version)
                .bind(3, static_cast<std::int64_t>(c.schema))
                .blob(4, c.bytes)
                .bind(5, to_unix_ms(c.taken))
                .run();
        }
    });
}

std::map<std::string, SavedCheckpoint> ReleaseStore::checkpoints() {
    std::lock_guard lock(mutex_);
    Statement s(*this, "SELECT module, version, schema, bytes, taken_ms FROM checkpoints");
    std::map<std::string, SavedCheckpoint> out;
    while (s.step()) {
        SavedCheckpoint c;
        c.module = s.text(0);
        c.version = s.text(1);
        c.schema = static_cast<std::uint32_t>(s.integer(2));
        c.bytes = s.text(3);
        c.taken = from_unix_ms(s.integer(4));
        c.saved = true;
        out[c.module] = std::move(c);
    }
    return out;
}

std::vector<CrashRecord> ReleaseStore::import_crashes(const std::vector<CrashRecord>& records) {
    return in_transaction([&] {
        std::vector<CrashRecord> added;
        for (auto r : records) {
            Statement s(*this,
                        "INSERT OR IGNORE INTO crashes(time_ms, pid, module, version, signal, "
                        "signal_name, backtrace, provisional_transaction) "
                        "VALUES(?, ?, ?, ?, ?, ?, ?, ?)");
            s.bind(1, to_unix_ms(r.time))
                .bind(2, r.pid)
                .bind(3, r.module)
                .bind(4, r.version)
                .bind(5, r.signal)
                .bind(6, r.signal_name)
                .bind(7, r.backtrace)
                .bind(8, r.provisional_transaction);
            s.run();
            if (sqlite3_changes(db_) == 0) continue;
            r.id = sqlite3_last_insert_rowid(db_);
            added.push_back(std::move(r));
        }
        return added;
    });
}

std::vector<CrashRecord> ReleaseStore::crashes() {
    std::lock_guard lock(mutex_);
    Statement s(*this,
                "SELECT id, time_ms, pid, module, version, signal, signal_name, backtrace, "
                "provisional_transaction FROM crashes ORDER BY id");
    std::vector<CrashRecord> out;
    while (s.step())
        out.push_back({s.integer(0), from_unix_ms(s.integer(1)), s.integer(2), s.text(3), s.text(4),
                       static_cast<int>(s.integer(5)), s.text(6), s.text(7), s.integer(8)});
    return out;
}

std::vector<VersionHistoryEntry> ReleaseStore::history_of(const std::string& name) {
    std::lock_guard lock(mutex_);
    Statement s(*this,
                "SELECT t.id, t.started_ms, t.issuer, g.action, g.old_version, g.new_version, "
                "g.library, g.sha256 FROM targets g JOIN transactions t ON t.id = "
                "g.transaction_id WHERE g.module = ? AND t.outcome = 'committed' ORDER BY t.id");
    s.bind(1, name);
    std::vector<VersionHistoryEntry> out;
    while (s.step())
        out.push_back({s.integer(0), from_unix_ms(s.integer(1)), s.text(2), s.text(3), s.text(4),
                       s.text(5), s.text(6), s.text(7)});
    return out;
}

std::string ReleaseStore::kind_of(const std::string& name) {
    std::lock_guard lock(mutex_);
    Statement s(*this,
                "SELECT kind FROM targets WHERE module = ? AND kind <> '' ORDER BY rowid DESC "
                "LIMIT 1");
    s.bind(1, name);
    return s.step() ? s.text(0) : std::string();
}

}  // namespace nonstop::detail
