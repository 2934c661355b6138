#include "zmq_endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdio>
#include <cstdlib>

namespace idaw::plugin::sidecar {
namespace {

/// What a host is: malformed (libzmq could not read it), valid but not loopback, or loopback.
enum class Host { Malformed, Other, Loopback };

/// True for an ASCII letter or digit (std::isalnum depends on the locale).
bool is_alnum(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/// True when `text` is non-empty and each character is a letter, digit, '.', '-' or '_' (a host or interface
/// name, an IPv4 literal, an IPv6 zone).
bool is_name(const std::string& text) {
    if (text.empty()) return false;
    for (const char c : text)
        if (!is_alnum(c) && c != '.' && c != '-' && c != '_') return false;
    return true;
}

/// True when `text` is non-empty and only holds the characters of an IPv6 literal (hex digits, ':', '.').
bool has_ipv6_characters(const std::string& text) {
    if (text.empty()) return false;
    for (const char c : text) {
        const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!hex && c != ':' && c != '.') return false;
    }
    return true;
}

/// True for '*' or '0' (any free port on bind), or a decimal port 1..65535. libzmq reads ports with atoi, so
/// '00', '5a' or '70000' would silently be port 0, 5 or 4464: refused here.
bool is_valid_port(const std::string& port) {
    if (port == "*" || port == "0") return true;
    if (port.empty() || port.size() > 5) return false;
    for (const char c : port)
        if (c < '0' || c > '9') return false;
    const long value = std::strtol(port.c_str(), nullptr, 10);
    return value >= 1 && value <= 65535;
}

/// Classifies one host, brackets already removed.
Host classify_host(const std::string& host) {
    if (host == "*") return Host::Other;
    const auto percent = host.find('%');
    if (host.find(':') != std::string::npos || percent != std::string::npos) {
        // Only an IPv6 literal, with an optional zone, may hold ':' or '%'.
        const std::string address = host.substr(0, percent);
        in6_addr parsed{};
        if (!has_ipv6_characters(address) || inet_pton(AF_INET6, address.c_str(), &parsed) != 1) return Host::Malformed;
        if (percent != std::string::npos)  // a zone: loopback only on some systems, so never counted as such
            return is_name(host.substr(percent + 1)) ? Host::Other : Host::Malformed;
        return IN6_IS_ADDR_LOOPBACK(&parsed) ? Host::Loopback : Host::Other;
    }
    if (!is_name(host)) return Host::Malformed;
    if (host == "localhost") return Host::Loopback;
    in_addr ipv4{};
    if (inet_pton(AF_INET, host.c_str(), &ipv4) == 1)  // four decimal numbers, no leading zeros
        return (ntohl(ipv4.s_addr) >> 24) == 127 ? Host::Loopback : Host::Other;
    return Host::Other;  // a host or interface name: may be anywhere
}

/// Classifies a tcp address `[SOURCE:PORT;]HOST:PORT`: loopback only when every host in it is.
Host classify_tcp(const std::string& address) {
    const auto semicolon = address.rfind(';');
    std::string parts[2];
    int count = 0;
    if (semicolon != std::string::npos) parts[count++] = address.substr(0, semicolon);
    parts[count++] = semicolon == std::string::npos ? address : address.substr(semicolon + 1);
    Host result = Host::Loopback;
    for (int i = 0; i < count; ++i) {
        const std::string& part = parts[i];
        const auto colon = part.rfind(':');
        if (colon == std::string::npos || !is_valid_port(part.substr(colon + 1))) return Host::Malformed;
        std::string host = part.substr(0, colon);
        if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
        const Host kind = classify_host(host);
        if (kind == Host::Malformed) return Host::Malformed;
        if (kind == Host::Other) result = Host::Other;
    }
    return result;
}

}  // namespace

ZmqEndpoint parse_zmq_endpoint(const std::string& endpoint) {
    ZmqEndpoint out;
    const auto separator = endpoint.find("://");
    if (separator == std::string::npos || separator + 3 == endpoint.size()) return out;
    const std::string transport = endpoint.substr(0, separator);
    const std::string address = endpoint.substr(separator + 3);
    if (transport == "tcp") {
        const Host kind = classify_tcp(address);
        if (kind == Host::Malformed) return out;
        out.loopback = kind == Host::Loopback;
    } else if (transport == "ipc" || transport == "inproc") {
        out.loopback = true;  // a socket file, or a name inside this process
    } else if (transport != "pgm" && transport != "epgm" && transport != "norm" && transport != "udp" &&
               transport != "ws" && transport != "wss" && transport != "tipc" && transport != "vmci") {
        return out;
    }
    out.valid = true;
    out.transport = transport;
    return out;
}

std::string not_an_endpoint_message(const std::string& endpoint) {
    std::string shown;
    for (const char c : endpoint) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7f) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\x%02x", byte);
            shown += escaped;
        } else {
            shown += c;
        }
    }
    return "not a ZeroMQ endpoint: " + shown + " (write tcp://HOST:PORT or ipc://PATH)";
}

}  // namespace idaw::plugin::sidecar
