#include "curve_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <sstream>

namespace idaw::plugin::sidecar {
namespace {

/// What to run when keys are missing (the sidecar's own hint, so both sides say the same).
constexpr const char* kMakeKeysHint = "create keys with: idaw sidecar --make-keys";

/// A Z85-encoded CURVE key is 40 characters from the Z85 alphabet.
bool is_z85_key(const std::string& key) {
    static const std::string alphabet =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    return key.size() == 40 && key.find_first_not_of(alphabet) == std::string::npos;
}

/// A ZPL certificate is a few hundred bytes; a file far larger is not one (and is not read whole).
constexpr std::size_t kMaxKeyFileBytes = 64 * 1024;

/// Reads the key file `path` into `text`. A secret file is opened without following a symbolic link and must be a
/// regular file only its owner can read (checked on the opened file, so nothing can swap it in between), as
/// idaw/base/keyfiles.py checks its own. False with a one-line `error` otherwise.
bool read_key_file(const std::string& path, bool secret, std::string& text, std::string& error) {
    const int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | (secret ? O_NOFOLLOW : 0);
    const int fd = ::open(path.c_str(), flags);
    if (fd < 0) {
        if (secret && errno == ELOOP)
            error = path + " is a symbolic link; a secret key must be a file of its own";
        else
            error = "cannot read CURVE key " + path + "; " + kMakeKeysHint;
        return false;
    }
    struct stat info {};
    bool ok = ::fstat(fd, &info) == 0;
    if (ok && !S_ISREG(info.st_mode)) {
        error = path + " is not a regular file; " + kMakeKeysHint;
        ok = false;
    } else if (ok && secret && (info.st_mode & 077) != 0) {
        // A secret others can read is no secret: refuse it, as the sidecar refuses its own.
        error = path + " is readable by other users; run: chmod 600 " + path;
        ok = false;
    } else if (!ok) {
        error = "cannot read CURVE key " + path + "; " + kMakeKeysHint;
    }
    text.clear();
    char buffer[4096];
    while (ok) {
        const ssize_t got = ::read(fd, buffer, sizeof buffer);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 || text.size() + static_cast<std::size_t>(got) > kMaxKeyFileBytes) {
            error = got < 0 ? "cannot read CURVE key " + path + "; " + kMakeKeysHint
                            : path + " is too large for a CURVE key file; " + kMakeKeysHint;
            ok = false;
            break;
        }
        if (got == 0) break;
        text.append(buffer, static_cast<std::size_t>(got));
    }
    ::close(fd);
    return ok;
}

/// Reads `public-key` and `secret-key` from the ZPL certificate `path` the way pyzmq's
/// zmq.auth.load_certificate does (the text after '=', stripped of blanks and quotes). False with `error` when
/// unreadable, unsafe (see read_key_file) or malformed.
bool read_certificate(const std::string& path, bool need_secret, std::string& public_key, std::string& secret_key,
                      std::string& error) {
    std::string text;
    if (!read_key_file(path, need_secret, text, error)) return false;
    std::istringstream in(text);
    std::string line;
    auto value_of = [](const std::string& text) {
        std::string v = text.substr(text.find('=') + 1);
        const auto first = v.find_first_not_of(" \t'\"");
        const auto last = v.find_last_not_of(" \t'\"\r");
        return first == std::string::npos ? std::string() : v.substr(first, last - first + 1);
    };
    while (std::getline(in, line)) {
        const auto start = line.find_first_not_of(" \t");
        if (start == std::string::npos) continue;
        const std::string trimmed = line.substr(start);
        if (trimmed.rfind("public-key", 0) == 0 && trimmed.find('=') != std::string::npos)
            public_key = value_of(trimmed);
        else if (trimmed.rfind("secret-key", 0) == 0 && trimmed.find('=') != std::string::npos)
            secret_key = value_of(trimmed);
    }
    if (!is_z85_key(public_key)) {
        error = path + " holds no valid public-key; " + kMakeKeysHint;
        return false;
    }
    if (need_secret && !is_z85_key(secret_key)) {
        error = path + " holds no valid secret-key; " + kMakeKeysHint;
        return false;
    }
    return true;
}

}  // namespace

std::string default_key_dir() {
    const char* env = std::getenv("IDAW_SIDECAR_KEYS");
    if (env != nullptr && *env != '\0') return env;
    const char* home = std::getenv("HOME");
    return std::string(home != nullptr ? home : "") + "/.config/idaw/sidecar-keys";
}

bool load_client_keys(const std::string& dir, CurveKeys& out, std::string& error) {
    if (dir.empty()) {
        error = "no CURVE key folder set; " + std::string(kMakeKeysHint);
        return false;
    }
    const std::string secret_path = dir + "/client.key_secret";
    CurveKeys keys;
    std::string unused;
    if (!read_certificate(secret_path, true, keys.public_key, keys.secret_key, error)) return false;
    if (!read_certificate(dir + "/server.key", false, keys.server_key, unused, error)) return false;
    out = keys;
    return true;
}

}  // namespace idaw::plugin::sidecar
