#!/usr/bin/env bash
# Build the test images locally (never pulled) and import them into the test
# dockerd (DOCKER_HOST=unix:///run/syscont-test/docker.sock):
#   syscont-busybox:test   busybox-static rootfs, users root and user (1000)
#   syscont-bookworm:test  debootstrap minbase bookworm + procps, util-linux,
#                          python3, user (1000); also the demo image.
#   syscont-systemd:test   debootstrap minbase bookworm + systemd (as
#                          /sbin/init), dbus, docker.io, iproute2, procps;
#                          command /sbin/init (issue 4's system workloads).
# Debootstrapped rootfs tarballs are cached in /var/cache/syscont-test keyed
# by a hash of their recipe; an image is re-imported only if its recipe
# changed.
#
# Usage: images.sh [busybox] [bookworm] [systemd]   (default: all)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root

DEBIAN_MIRROR="${SYSCONT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BOOKWORM_PACKAGES="procps,util-linux,python3"
SYSTEMD_PACKAGES="systemd,systemd-sysv,dbus,docker.io,iproute2,procps,util-linux,kmod,ca-certificates"

# image_recipe IMAGE: the recipe hash recorded in the image's comment.
image_recipe() {
    docker_cli image inspect --format '{{.Comment}}' "$1" 2>/dev/null || true
}

# umount_under DIR: unmount anything left mounted below DIR (deepest first).
umount_under() {
    local dir mnt
    dir="$(readlink -f "$1")"
    { awk '{print $5}' /proc/self/mountinfo | grep -E "^$dir(/|$)" || true; } | sort -r |
        while read -r mnt; do umount -l "$mnt" || true; done
}

safe_rm_rootfs() {
    [ -d "$1" ] || return 0
    umount_under "$1"
    rm -rf --one-file-system "$1"
}

add_users() { # ROOTFS: /etc/passwd and /etc/group with root and user:1000
    local r="$1"
    mkdir -p "$r/etc" "$r/root" "$r/home/user" "$r/tmp"
    chmod 1777 "$r/tmp"
    chmod 0700 "$r/root"
    printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
    printf 'root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n' >"$r/etc/group"
    chown 1000:1000 "$r/home/user"
}

build_busybox_rootfs() { # DIR
    local r="$1" app
    mkdir -p "$r/bin" "$r/sbin" "$r/usr/bin" "$r/usr/sbin" "$r/proc" "$r/sys" "$r/dev" "$r/etc"
    install -m 0755 /bin/busybox "$r/bin/busybox"
    for app in $(/bin/busybox --list-full); do
        [ -e "$r/$app" ] || ln -s /bin/busybox "$r/$app"
    done
    add_users "$r"
    echo syscont-busybox >"$r/etc/hostname"
}

build_bookworm_rootfs() { # DIR PACKAGES
    local r="$1"
    debootstrap --variant=minbase --include="$2" bookworm "$r" "$DEBIAN_MIRROR"
    chroot "$r" /usr/sbin/useradd -m -u 1000 -U -s /bin/bash user
    chroot "$r" /usr/bin/apt-get clean
    rm -rf "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/log/*.log
}

# The systemd image: what a user's "VM-like" image has. Units that cannot
# work in any container are left to systemd's own ConditionVirtualization
# checks; nothing is masked here, so the tests see what users see.
finish_systemd_rootfs() { # DIR
    local r="$1"
    echo syscont-systemd >"$r/etc/hostname"
    # An empty machine-id is filled by systemd at boot (as in Debian's images).
    : >"$r/etc/machine-id"
    rm -f "$r/var/lib/dbus/machine-id"
}

recipe_hash() { # FUNCTION EXTRA...: hash of the function's definition and inputs
    { declare -f "$1"; declare -f add_users; shift; printf '%s\n' "$@"; } | sha256sum | cut -c1-16
}

import_tar() { # TAR IMAGE HASH
    log "importing $2 (recipe $3)"
    docker_cli import -m "recipe=$3" -c 'CMD ["/bin/sh"]' "$1" "$2" >/dev/null
}

image_busybox() {
    local hash work
    [ -x /bin/busybox ] || die "/bin/busybox missing (install busybox-static: scripts/deps.sh)"
    hash="$(recipe_hash build_busybox_rootfs "$(sha256sum /bin/busybox | cut -c1-16)")"
    if [ "$(image_recipe "$SYSCONT_BUSYBOX_IMAGE")" = "recipe=$hash" ]; then
        log "$SYSCONT_BUSYBOX_IMAGE up to date (recipe $hash)"
        return
    fi
    work="$(mktemp -d "${TMPDIR:-/tmp}/syscont-busybox.XXXXXX")"
    build_busybox_rootfs "$work/rootfs"
    tar -C "$work/rootfs" --numeric-owner -cf "$work/rootfs.tar" .
    import_tar "$work/rootfs.tar" "$SYSCONT_BUSYBOX_IMAGE" "$hash"
    rm -rf "$work"
}

# debootstrap_image IMAGE NAME PACKAGES CMD [FINISH]: a bookworm image from
# a cached rootfs tarball (built when its recipe changed).
debootstrap_image() {
    local image="$1" name="$2" packages="$3" cmd="$4" finish="${5:-}" hash tarball work
    hash="$(recipe_hash build_bookworm_rootfs "$packages" bookworm minbase "$cmd" \
        "$( [ -n "$finish" ] && declare -f "$finish")")"
    if [ "$(image_recipe "$image")" = "recipe=$hash" ]; then
        log "$image up to date (recipe $hash)"
        return
    fi
    mkdir -p "$SYSCONT_TEST_CACHE"
    tarball="$SYSCONT_TEST_CACHE/$name-$hash.tar"
    if [ -s "$tarball" ]; then
        log "reusing cached rootfs $tarball"
    else
        work="$SYSCONT_TEST_CACHE/work-$name"
        safe_rm_rootfs "$work"
        mkdir -p "$work"
        log "debootstrap bookworm for $image (minbase + $packages) from $DEBIAN_MIRROR; takes a minute or more"
        if ! { build_bookworm_rootfs "$work/rootfs" "$packages" && { [ -z "$finish" ] || "$finish" "$work/rootfs"; }; } \
            >"$SYSCONT_TEST_CACHE/debootstrap-$name.log" 2>&1; then
            tail -n 30 "$SYSCONT_TEST_CACHE/debootstrap-$name.log" >&2 || true
            safe_rm_rootfs "$work"
            die "debootstrap failed (full log: $SYSCONT_TEST_CACHE/debootstrap-$name.log)"
        fi
        umount_under "$work/rootfs"
        tar -C "$work/rootfs" --numeric-owner -cf "$tarball.partial" .
        mv "$tarball.partial" "$tarball"
        safe_rm_rootfs "$work"
        # keep only this recipe's tarball
        find "$SYSCONT_TEST_CACHE" -maxdepth 1 -name "$name-*.tar" ! -name "$name-$hash.tar" -delete
    fi
    log "importing $image (recipe $hash)"
    docker_cli import -m "recipe=$hash" -c "CMD $cmd" "$tarball" "$image" >/dev/null
}

image_bookworm() {
    debootstrap_image "$SYSCONT_BOOKWORM_IMAGE" bookworm "$BOOKWORM_PACKAGES" '["/bin/sh"]'
}

image_systemd() {
    debootstrap_image "$SYSCONT_SYSTEMD_IMAGE" systemd "$SYSTEMD_PACKAGES" '["/sbin/init"]' finish_systemd_rootfs
}

docker_cli version >/dev/null 2>&1 || die "no test dockerd on $DOCKER_HOST (run scripts/env-up.sh)"
[ "$#" -gt 0 ] || set -- busybox bookworm systemd
for img in "$@"; do
    case "$img" in
        busybox) image_busybox ;;
        bookworm|demo) image_bookworm ;;
        systemd) image_systemd ;;
        *) die "unknown image '$img' (known: busybox, bookworm, demo, systemd)" ;;
    esac
done
