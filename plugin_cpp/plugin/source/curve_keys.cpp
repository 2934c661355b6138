#include "curve_keys.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
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

/// Reads `public-key` and `secret-key` from a ZPL certificate the way pyzmq's zmq.auth.load_certificate does
/// (the text after '=', stripped of blanks and quotes). False with `error` when unreadable or malformed.
bool read_certificate(const std::string& path, bool need_secret, std::string& public_key, std::string& secret_key,
                      std::string& error) {
    std::ifstream in(path);
    if (!in) {
        error = "cannot read CURVE key " + path + "; " + kMakeKeysHint;
        return false;
    }
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
    struct stat info {};
    // A secret others can read is no secret: refuse it, as the sidecar refuses its own.
    if (::stat(secret_path.c_str(), &info) == 0 && (info.st_mode & 077) != 0) {
        error = secret_path + " is readable by other users; run: chmod 600 " + secret_path;
        return false;
    }
    CurveKeys keys;
    std::string unused;
    if (!read_certificate(secret_path, true, keys.public_key, keys.secret_key, error)) return false;
    if (!read_certificate(dir + "/server.key", false, keys.server_key, unused, error)) return false;
    out = keys;
    return true;
}

}  // namespace idaw::plugin::sidecar
