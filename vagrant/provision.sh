#!/bin/sh
# Provisioning of one dbrs VM (see Vagrantfile): run as root by Vagrant.
#   provision.sh package            install dbrs: the .deb in vagrant/shared/ if there is one, else pip into /opt/dbrs/venv
#   provision.sh init               dbrs init: spec, secrets, bundle + passphrase into vagrant/shared/ (once)
#   provision.sh install ROLE       dbrs-install --role ROLE --bundle vagrant/shared/bundle.dbrs
set -eu

SRC=/dbrs
SHARED=$SRC/vagrant/shared
VENV=/opt/dbrs/venv
export DEBIAN_FRONTEND=noninteractive

say() { echo "dbrs-provision: $*"; }

package() {
    deb=$(ls "$SHARED"/dbrs_*.deb 2>/dev/null | sort | tail -n 1 || true)
    apt-get update -q >/dev/null
    if [ -n "$deb" ]; then
        say "installing $deb"
        apt-get install -y -q "$deb" >/dev/null
        return
    fi
    say "installing the working tree with pip into $VENV"
    apt-get install -y -q --no-install-recommends python3-venv python3-pip >/dev/null
    # Build from a copy: pip must not write build files into the synced working tree.
    build=$(mktemp -d)
    tar -C "$SRC" --exclude=.git --exclude=.venv --exclude=vagrant --exclude='*.egg-info' -cf - . | tar -C "$build" -xf -
    [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "$build"
    rm -rf "$build"
    ln -sf "$VENV/bin/dbrs" /usr/local/sbin/dbrs
    ln -sf "$VENV/bin/dbrs-install" /usr/local/sbin/dbrs-install
}

member() {  # member ROLE -> its IP from DBRS_MEMBERS ("primary=IP secondary=IP arbiter=IP")
    for pair in $DBRS_MEMBERS; do
        [ "${pair%%=*}" = "$1" ] && { echo "${pair#*=}"; return; }
    done
    echo "dbrs-provision: no $1 in DBRS_MEMBERS" >&2
    exit 2
}

init() {
    mkdir -p "$SHARED"
    if [ -f "$SHARED/bundle.dbrs" ]; then
        say "$SHARED/bundle.dbrs exists; keeping the cluster it holds (delete vagrant/shared/ for a new one)"
        return
    fi
    umask 077
    head -c 24 /dev/urandom | base64 > "$SHARED/passphrase"
    express=""
    [ "${DBRS_MONGO_EXPRESS:-0}" = 1 ] && express="--mongo-express"
    dbrs init --force --name dbrs \
        --primary "$(member primary)" --secondary "$(member secondary)" --arbiter "$(member arbiter)" \
        --allow "$DBRS_NETWORK.0/24" --mongodb-version "$DBRS_MONGODB_VERSION" $express \
        --passphrase-file "$SHARED/passphrase"
    cp /etc/dbrs/bundle.dbrs "$SHARED/bundle.dbrs"
    say "bundle and passphrase written to vagrant/shared/"
}

install() {
    [ -f "$SHARED/bundle.dbrs" ] || { echo "dbrs-provision: $SHARED/bundle.dbrs missing; provision mongod1 first (vagrant up mongod1)" >&2; exit 1; }
    dbrs-install --role "$1" --bundle "$SHARED/bundle.dbrs" --passphrase-file "$SHARED/passphrase"
}

case "${1:-}" in
    package) package ;;
    init) init ;;
    install) install "${2:?role}" ;;
    *) echo "usage: provision.sh package | init | install ROLE" >&2; exit 2 ;;
esac
