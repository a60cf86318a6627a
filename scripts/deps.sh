# Debian packages xrayd needs, installed only when missing (sourced by run and test).
# Usage: xrayd_install_debs PACKAGE...
xrayd_install_debs() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
}

XRAYD_BUILD_DEBS=(build-essential cmake pkg-config libuv1-dev libjansson-dev
    libcurl4-openssl-dev libssl-dev libyaml-dev libhttp-parser-dev libprotobuf-c-dev
    protobuf-c-compiler libsnappy-dev)
XRAYD_TEST_DEBS=(libcmocka-dev clang clang-format libclang-rt-14-dev curl nghttp2-server openssl
    python3-aws-xray-sdk prometheus patchelf systemd chromium)

# Node.js and npm: Debian's packages, unless a node with its own npm is already there
# (NodeSource's nodejs package ships npm and conflicts with Debian's).
xrayd_install_node() {
    command -v node >/dev/null && command -v npm >/dev/null && return 0
    xrayd_install_debs nodejs npm
}
