#!/bin/sh
# Build a small Linux guest for QEMU (software emulation) that the VM isolation tests boot and
# reach over SSH: a Debian cloud kernel plus an initramfs holding busybox, dropbear and the
# SFTP server, with root's password set from CIRRUS_QEMU_GUEST_PASSWORD.
#
# Usage (as root, Debian bookworm):  sh scripts/build-qemu-guest.sh CACHE_DIR
#
# Output in CACHE_DIR:
#   vmlinuz             the kernel of the current linux-image-cloud-amd64 dependency
#   initramfs.cpio.gz   busybox + dropbear + sftp-server + virtio modules, /init starts dropbear
#   manifest.json       {"format", "user", "password", "kernel_version", "kernel_package", ...}
#
# Idempotent: when the manifest already describes this kernel package, password and format, the
# script only checks that the files are there. Nothing is written outside CACHE_DIR except the
# Debian packages qemu-system-x86, dropbear-bin and busybox-static, installed when missing.
# The kernel and the SFTP server are fetched with `apt-get download` of exact package names
# (a glob would fetch every matching kernel) and unpacked in a temporary directory, so the
# host's own packages stay as they are.
set -eu

FORMAT=1
USER_NAME=root
PASSWORD="${CIRRUS_QEMU_GUEST_PASSWORD:-cirrus-guest}"
META_PACKAGE=linux-image-cloud-amd64
# Load order matters: each module needs the ones before it. virtio-rng feeds the guest's entropy
# pool so dropbear never waits for randomness.
MODULES="drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev
drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci net/core/failover
drivers/net/net_failover drivers/net/virtio_net drivers/char/hw_random/virtio-rng"

log() { printf 'build-qemu-guest: %s\n' "$*" >&2; }
die() {
    log "$*"
    exit 1
}

[ $# -eq 1 ] || die "usage: $0 CACHE_DIR"
[ "$(id -u)" = 0 ] || die "must run as root"
case "$PASSWORD" in
*'"'* | *'\'*) die "CIRRUS_QEMU_GUEST_PASSWORD must not contain a double quote or a backslash" ;;
esac
mkdir -p "$1"
CACHE="$(cd "$1" && pwd)"

missing=""
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing="$missing qemu-system-x86"
[ -x /usr/sbin/dropbear ] && command -v dropbearkey >/dev/null 2>&1 || missing="$missing dropbear-bin"
[ -x /bin/busybox ] || missing="$missing busybox-static"
if [ -n "$missing" ]; then
    log "installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086  # the list is word-split on purpose
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The exact kernel package the meta package points at today (e.g. linux-image-6.1.0-56-cloud-amd64).
resolve_kernel() {
    apt-cache depends "$META_PACKAGE" 2>/dev/null |
        awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}
KPKG="$(resolve_kernel || true)"
if [ -z "$KPKG" ]; then
    apt-get update -qq
    KPKG="$(resolve_kernel)"
fi
[ -n "$KPKG" ] || die "apt-cache cannot resolve $META_PACKAGE to a kernel package"
KV="${KPKG#linux-image-}"

manifest_field() {
    sed -n "s/.*\"$1\": *\"\\([^\"]*\\)\".*/\\1/p" "$CACHE/manifest.json" 2>/dev/null | head -n 1
}
if [ -s "$CACHE/vmlinuz" ] && [ -s "$CACHE/initramfs.cpio.gz" ] &&
    [ "$(manifest_field format)" = "$FORMAT" ] &&
    [ "$(manifest_field kernel_package)" = "$KPKG" ] &&
    [ "$(manifest_field password)" = "$PASSWORD" ]; then
    log "up to date: $CACHE (kernel $KV)"
    exit 0
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
R="$WORK/root"

# apt-get download writes into the current directory; `_apt` must be able to write there.
download() {
    (cd "$WORK" && apt-get download -qq "$1" >/dev/null 2>&1) && return 0
    # The lists may name a version the mirror no longer has: refresh them once and retry.
    apt-get update -qq
    (cd "$WORK" && apt-get download -qq "$1" >/dev/null)
}
chmod 755 "$WORK"
log "downloading $KPKG and openssh-sftp-server"
download "$KPKG"
download openssh-sftp-server
dpkg -x "$WORK/${KPKG}"_*.deb "$WORK/kernel"
dpkg -x "$WORK"/openssh-sftp-server_*.deb "$WORK/sftp"
[ -s "$WORK/kernel/boot/vmlinuz-$KV" ] || die "$KPKG holds no /boot/vmlinuz-$KV"

log "building the initramfs (kernel $KV)"
mkdir -p "$R/bin" "$R/etc/dropbear" "$R/proc" "$R/sys" "$R/dev" "$R/tmp" "$R/root" "$R/mods" \
    "$R/usr/sbin" "$R/usr/lib" "$R/run" "$R/var/log"
chmod 1777 "$R/tmp"
chmod 0700 "$R/root"
cp /bin/busybox "$R/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$R/bin/$applet"
done
cp /usr/sbin/dropbear "$R/usr/sbin/dropbear"
# Dropbear runs /usr/lib/sftp-server for the "sftp" subsystem.
cp "$WORK/sftp/usr/lib/openssh/sftp-server" "$R/usr/lib/sftp-server"
for binary in /usr/sbin/dropbear "$WORK/sftp/usr/lib/openssh/sftp-server"; do
    for lib in $(ldd "$binary" | grep -o '/[^ ]*\.so[^ ]*'); do
        mkdir -p "$R$(dirname "$lib")"
        cp -L "$lib" "$R$lib"
    done
done

moddir="$WORK/kernel/lib/modules/$KV"
: >"$R/etc/modules-order"
for m in $MODULES; do
    name="$(basename "$m")"
    if [ -f "$moddir/kernel/$m.ko" ]; then
        cp "$moddir/kernel/$m.ko" "$R/mods/$name.ko"
        echo "$name" >>"$R/etc/modules-order"
    elif ! grep -q "^kernel/$m.ko\$" "$moddir/modules.builtin" 2>/dev/null; then
        die "kernel $KV has neither a module nor a built-in driver kernel/$m.ko"
    fi
done

printf '%s:x:0:0:root:/root:/bin/sh\n' "$USER_NAME" >"$R/etc/passwd"
printf 'root:x:0:\n' >"$R/etc/group"
hash="$(printf '%s\n' "$PASSWORD" | /bin/busybox mkpasswd -m sha512 -P 0)"
printf '%s:%s:19000:0:99999:7:::\n' "$USER_NAME" "$hash" >"$R/etc/shadow"
chmod 600 "$R/etc/shadow"
printf '/bin/sh\n' >"$R/etc/shells"
printf 'export PATH=/bin:/usr/sbin:/usr/lib\nexport HOME=/root\n' >"$R/etc/profile"
printf 'qemu-guest\n' >"$R/etc/hostname"
# dropbear 2022.83 aborts on every asyncssh connection when it has only an ed25519 key: keep RSA.
for t in ed25519 rsa ecdsa; do
    dropbearkey -t "$t" -f "$R/etc/dropbear/dropbear_${t}_host_key" >/dev/null 2>&1
done
mknod "$R/dev/console" c 5 1
mknod "$R/dev/null" c 1 3

cat >"$R/init" <<'INIT'
#!/bin/sh
# PID 1 of the test guest: mount the pseudo file systems, load the virtio drivers, bring up the
# network QEMU's user mode emulates (10.0.2.0/24 exists only inside QEMU) and serve SSH.
export PATH=/bin:/usr/sbin:/usr/lib
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts
mount -t devpts devpts /dev/pts
hostname -F /etc/hostname
for m in $(cat /etc/modules-order); do insmod "/mods/$m.ko"; done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
echo "qemu-guest: starting dropbear"
/usr/sbin/dropbear -F -E -p 22 \
    -r /etc/dropbear/dropbear_ed25519_host_key \
    -r /etc/dropbear/dropbear_rsa_host_key \
    -r /etc/dropbear/dropbear_ecdsa_host_key &
# PID 1 must never exit (the kernel would panic); it also reaps orphaned children.
while true; do sleep 3600; done
INIT
chmod 755 "$R/init"

(cd "$R" && find . | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -1 >"$WORK/initramfs.cpio.gz")
cp "$WORK/kernel/boot/vmlinuz-$KV" "$WORK/vmlinuz"
cat >"$WORK/manifest.json" <<EOF
{
  "format": "$FORMAT",
  "user": "$USER_NAME",
  "password": "$PASSWORD",
  "kernel_version": "$KV",
  "kernel_package": "$KPKG",
  "dropbear": "$(dropbear -V 2>&1 | head -n 1 | tr -d '"\\')"
}
EOF
# Replace the files last and the manifest after them, so an interrupted build is never taken
# for a finished one.
rm -f "$CACHE/manifest.json"
mv "$WORK/vmlinuz" "$CACHE/vmlinuz"
mv "$WORK/initramfs.cpio.gz" "$CACHE/initramfs.cpio.gz"
mv "$WORK/manifest.json" "$CACHE/manifest.json"
log "ready: $CACHE (kernel $KV, user $USER_NAME)"
