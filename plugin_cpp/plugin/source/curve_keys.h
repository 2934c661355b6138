// CURVE keys for a sidecar beyond loopback, read from the key directory `idaw sidecar --make-keys` writes (ZeroMQ's ZPL
// certificate format): server.key holds the sidecar's public key, client.key_secret the plugin's own key pair.
#pragma once

#include <string>

namespace idaw::plugin::sidecar {

/// What a CURVE client needs, each key as 40 Z85 characters.
struct CurveKeys {
    std::string public_key;  ///< the plugin's (client.key_secret)
    std::string secret_key;  ///< the plugin's (client.key_secret)
    std::string server_key;  ///< the sidecar's public key (server.key)
};

/// The key directory used when none is set: $IDAW_SIDECAR_KEYS, else ~/.config/idaw/sidecar-keys (as
/// idaw/base/keyfiles.py default_key_dir()).
std::string default_key_dir();

/// Reads the client's keys from `dir` (the key directory itself, holding server.key and client.key_secret). On
/// failure returns false and a one-line `error` saying what to do. Refuses a secret file that is a symbolic link,
/// not a regular file, or readable by others, as idaw/base/keyfiles.py does (checked on the file opened with
/// O_NOFOLLOW).
bool load_client_keys(const std::string& dir, CurveKeys& out, std::string& error);

}  // namespace idaw::plugin::sidecar
