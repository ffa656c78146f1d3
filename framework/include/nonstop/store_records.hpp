// The records the release store hands back to hosts and the shell: saved checkpoints, crash
// records, the version catalogue, and what a restart restored.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "nonstop/transaction_report.hpp"

namespace nonstop {

/// One module's checkpoint taken on request (Runtime::checkpoint) or at clean shutdown.
struct SavedCheckpoint {
    std::string module;
    std::string version;
    std::uint32_t schema = 0;
    std::string bytes;
    std::chrono::system_clock::time_point taken{};
    bool saved = false;  // written to the release store (false without a state directory)
    std::string error;   // why no checkpoint was taken; empty when one was
};

/// A fatal signal in a module's thread, written by the crash black box as the process died
/// and imported into the store at the next start.
struct CrashRecord {
    std::int64_t id = 0;
    std::chrono::system_clock::time_point time{};
    std::int64_t pid = 0;
    std::string module;
    std::string version;
    int signal = 0;
    std::string signal_name;  // "SIGSEGV", ...
    std::string backtrace;    // backtrace_symbols_fd lines
    /// The provisional transaction the crash ended (0: the module was permanent).
    std::int64_t provisional_transaction = 0;
};

/// A module library found in the module path, read from its bytes without loading it.
struct CatalogueEntry {
    std::string path;
    std::string kind;
    std::string version;
    std::string sha256;
};

/// One committed change of a module, from the store's transaction records.
struct VersionHistoryEntry {
    std::int64_t transaction = 0;  // the store's number for it (unique across restarts)
    std::chrono::system_clock::time_point time{};
    std::string issuer;
    std::string action;  // load, replace, unload, enable, disable
    std::string old_version;
    std::string new_version;
    std::string library;
    std::string sha256;
};

/// `nonstop versions NAME`: the libraries of the module's kind and its version history.
struct VersionCatalogue {
    std::string kind;  // empty: every kind was listed
    std::vector<CatalogueEntry> libraries;
    std::vector<VersionHistoryEntry> history;
};

/// What Runtime::restore() did.
struct RestoreReport {
    /// The transactions that restarted the permanent release (normally one group load, and a
    /// disable per module that was disabled).
    std::vector<TransactionReport> transactions;
    /// One sentence per module of the release that could not be restarted.
    std::vector<std::string> errors;
    /// Crash records found from the previous run (already in crashes()).
    std::vector<CrashRecord> crashes;
    /// Non-empty when a provisional transaction was discarded: why.
    std::string discarded;
    std::size_t restored = 0;  // modules running again
};

}  // namespace nonstop
