// The plugin's CURVE key reader (plugin_cpp/plugin/source/curve_keys.h) on real files: it reads the key folder
// `idaw sidecar --make-keys` writes, and refuses a secret key file that is a symbolic link, not a regular file, or
// readable by others, each with one line saying what is wrong.
#include "curve_keys.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

using idaw::plugin::sidecar::CurveKeys;
using idaw::plugin::sidecar::load_client_keys;
namespace fs = std::filesystem;

namespace {

// Three valid Z85 keys (any 40 characters of the alphabet will do for the reader).
const std::string kPublic = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
const std::string kSecret = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6";
const std::string kServer = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";

/// A ZPL certificate as idaw/base/keyfiles.py writes it (secret-key only when `secret` is not empty).
std::string certificate(const std::string& public_key, const std::string& secret) {
    std::string text = "#   ZeroMQ CURVE Certificate\n\nmetadata\ncurve\n    public-key = \"" + public_key + "\"\n";
    if (!secret.empty()) text += "    secret-key = \"" + secret + "\"\n";
    return text;
}

/// Writes `text` to `path` with `mode`.
void write_file(const fs::path& path, const std::string& text, mode_t mode) {
    std::ofstream(path) << text;
    REQUIRE(::chmod(path.c_str(), mode) == 0);
}

/// A fresh key folder holding client.key_secret (0600) and server.key (0644); removed when it goes.
struct KeyFolder {
    fs::path dir;
    KeyFolder() {
        char pattern[] = "/tmp/idaw-curve-keys-XXXXXX";
        REQUIRE(::mkdtemp(pattern) != nullptr);
        dir = pattern;
        write_file(dir / "client.key_secret", certificate(kPublic, kSecret), 0600);
        write_file(dir / "server.key", certificate(kServer, ""), 0644);
    }
    ~KeyFolder() { fs::remove_all(dir); }
    std::string secret_path() const { return (dir / "client.key_secret").string(); }
};

}  // namespace

TEST_CASE("a key folder as --make-keys writes it is read") {
    KeyFolder folder;
    CurveKeys keys;
    std::string error;
    REQUIRE_MESSAGE(load_client_keys(folder.dir.string(), keys, error), error);
    CHECK(keys.public_key == kPublic);
    CHECK(keys.secret_key == kSecret);
    CHECK(keys.server_key == kServer);
}

TEST_CASE("a secret key readable by others is refused") {
    KeyFolder folder;
    for (const mode_t mode : {0640, 0604, 0644, 0660}) {
        REQUIRE(::chmod(folder.secret_path().c_str(), mode) == 0);
        CurveKeys keys;
        std::string error;
        CHECK_FALSE(load_client_keys(folder.dir.string(), keys, error));
        CHECK(error == folder.secret_path() + " is readable by other users; run: chmod 600 " + folder.secret_path());
        CHECK(keys.secret_key.empty());
    }
}

TEST_CASE("a secret key that is a symbolic link is refused, even to a private file") {
    KeyFolder folder;
    const fs::path real = folder.dir / "elsewhere.key_secret";
    fs::rename(folder.secret_path(), real);  // still 0600 and valid: only the link is wrong
    fs::create_symlink(real, folder.secret_path());
    CurveKeys keys;
    std::string error;
    CHECK_FALSE(load_client_keys(folder.dir.string(), keys, error));
    CHECK(error == folder.secret_path() + " is a symbolic link; a secret key must be a file of its own");
    CHECK(error.find('\n') == std::string::npos);
}

TEST_CASE("a secret key that is not a regular file is refused without blocking") {
    KeyFolder folder;
    fs::remove(folder.secret_path());
    REQUIRE(::mkfifo(folder.secret_path().c_str(), 0600) == 0);  // a read would wait for a writer forever
    CurveKeys keys;
    std::string error;
    CHECK_FALSE(load_client_keys(folder.dir.string(), keys, error));
    CHECK(error == folder.secret_path() + " is not a regular file; create keys with: idaw sidecar --make-keys");
}

TEST_CASE("missing, oversized or malformed key files are one line each") {
    KeyFolder folder;
    CurveKeys keys;
    std::string error;
    fs::remove(folder.secret_path());
    CHECK_FALSE(load_client_keys(folder.dir.string(), keys, error));
    CHECK(error == "cannot read CURVE key " + folder.secret_path() + "; create keys with: idaw sidecar --make-keys");

    write_file(folder.secret_path(), certificate(kPublic, kSecret) + std::string(70000, '#'), 0600);
    CHECK_FALSE(load_client_keys(folder.dir.string(), keys, error));
    CHECK(error ==
          folder.secret_path() + " is too large for a CURVE key file; create keys with: idaw sidecar --make-keys");

    write_file(folder.secret_path(), certificate(kPublic, "short"), 0600);
    CHECK_FALSE(load_client_keys(folder.dir.string(), keys, error));
    CHECK(error == folder.secret_path() + " holds no valid secret-key; create keys with: idaw sidecar --make-keys");
}
