#pragma once
/// File helpers: whole-file reads and atomic writes.

#include <cstdint>
#include <string>
#include <vector>

namespace graft {

/// Reads a whole file. Throws graft::Error naming the path if it cannot.
std::string read_file(const std::string& path);

/// Reads at most the first `n` bytes of a file (fewer if it is shorter).
std::string read_file_prefix(const std::string& path, size_t n);

/// Writes `data` to `path` atomically: a temporary file in the same folder,
/// fsync, rename over `path`, fsync of the folder. A reader sees either the
/// old file or the new one, never a partial one. Throws graft::Error naming
/// the path and the system's reason (disk full, read-only, ...); the old file
/// is then left untouched and the temporary removed.
void write_file_atomic(const std::string& path, const std::string& data);

/// Creates a folder and its parents; throws graft::Error naming it on failure.
void make_dirs(const std::string& path);

/// SHA-256 of a byte string, as 64 lower-case hex digits.
std::string sha256_hex(const std::string& data);

/// SHA-256 of a file's contents (streamed).
std::string sha256_file(const std::string& path);

}  // namespace graft
