#pragma once
/// File helpers: whole-file reads and atomic writes.

#include <cstdint>
#include <string>
#include <vector>

namespace graft {

/// Reads a whole file. Throws graft::Error naming the path if it cannot.
std::string read_file(const std::string& path);

/// Reads a whole file that must be a regular file (symlinks followed). A
/// character device (/dev/zero), block device, FIFO, socket or folder is
/// refused before anything is read, with a graft::Error naming the path and
/// what it is: the parsers of weight files read their input whole, and such a
/// path would never end or would block. (read_file keeps accepting them.)
std::string read_regular_file(const std::string& path);

/// Throws graft::Error unless `path` (an input file named by the user) is a
/// regular file, symlinks followed: a missing path, a folder (the message
/// suggests the files in it, path/*) and anything else (a device, a FIFO)
/// each have a message naming `path`.
void check_input_file(const std::string& path);

/// Reads at most the first `n` bytes of a file (fewer if it is shorter).
std::string read_file_prefix(const std::string& path, size_t n);

/// Writes `data` to `path` atomically: a temporary file in the same folder,
/// fsync, rename over `path`, fsync of the folder. A reader sees either the
/// old file or the new one, never a partial one. Throws graft::Error naming
/// the path and the system's reason (disk full, read-only, ...); the old file
/// is then left untouched and the temporary removed. (A kill -9 can leave a
/// temporary ".NAME.tmpN" behind; remove_stale_temporaries clears them.)
/// Fault injection for tests: GRAFT_FAULT_WRITE_DELAY_MS=N sleeps N ms
/// between writing the temporary and renaming it.
void write_file_atomic(const std::string& path, const std::string& data);

/// Removes the temporaries that write_file_atomic leaves when killed
/// (".NAME.tmpDIGITS") directly inside `dir`; returns how many.
int remove_stale_temporaries(const std::string& dir);

/// Creates a folder and its parents; throws graft::Error naming it on failure.
void make_dirs(const std::string& path);

/// SHA-256 of a byte string, as 64 lower-case hex digits.
std::string sha256_hex(const std::string& data);

/// SHA-256 of a file's contents (streamed).
std::string sha256_file(const std::string& path);

}  // namespace graft
